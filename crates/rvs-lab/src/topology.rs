//! Applies a [`Plan`] to the system: namespaces and their sysctls, the
//! switch's bridges, the veth pairs (created straight into their namespaces,
//! nothing ever appears in the host namespace), then per namespace one
//! `ip -batch` with links up, addresses, permanent neighbours and routes,
//! then the checksum-offload fix and the real-server host setup.

use std::collections::BTreeMap;

use crate::cmd;
use crate::error::Result;
use crate::netns;
use crate::plan::Plan;

/// Builds everything in `plan`. `on_netns_created` is called right after each
/// namespace exists, so the caller can record it for teardown before anything
/// else can fail.
pub(crate) fn apply(plan: &Plan, on_netns_created: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
    let lab = &plan.description;
    for name in lab.namespaces() {
        netns::create(&name)?;
        on_netns_created(&name)?;
    }
    for (name, settings) in &plan.sysctls {
        netns::write_sysctls(name, settings)?;
    }
    for veth in &plan.veths {
        let (a, b) = (&veth.a, &veth.b);
        let a_mac = a.mac.to_string();
        let b_mac = b.mac.to_string();
        cmd::run(
            "ip",
            &[
                "-n", &a.netns, "link", "add", &a.name, "address", &a_mac, "type", "veth", "peer", "name", &b.name,
                "address", &b_mac, "netns", &b.netns,
            ],
        )?;
    }

    let mut batches: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let switch = batches.entry(lab.switch.netns.as_str()).or_default();
    for (bridge, mac) in &plan.bridges {
        switch.push(format!("link add {bridge} address {mac} type bridge stp_state 0 mcast_snooping 0"));
        switch.push(format!("link set {bridge} up"));
    }
    for veth in &plan.veths {
        if let Some(bridge) = &veth.bridge {
            batches
                .entry(veth.b.netns.as_str())
                .or_default()
                .push(format!("link set {} master {bridge} up", veth.b.name));
        } else {
            batches.entry(veth.b.netns.as_str()).or_default().push(format!("link set {} up", veth.b.name));
        }
        batches.entry(veth.a.netns.as_str()).or_default().push(format!("link set {} up", veth.a.name));
    }
    for addr in &plan.addrs {
        let flags = if addr.addr.is_ipv6() { " nodad" } else { "" };
        batches
            .entry(addr.netns.as_str())
            .or_default()
            .push(format!("addr add {}/{} dev {}{flags}", addr.addr, addr.prefix, addr.dev));
    }
    for entry in &plan.neighbours {
        batches
            .entry(entry.netns.as_str())
            .or_default()
            .push(format!("neigh replace {} lladdr {} dev {} nud permanent", entry.addr, entry.mac, entry.dev));
    }
    for route in &plan.routes {
        let dest = match route.dest {
            Some((net, prefix)) => format!("{net}/{prefix}"),
            None if route.via.is_ipv4() => "0.0.0.0/0".to_owned(),
            None => "::/0".to_owned(),
        };
        batches.entry(route.netns.as_str()).or_default().push(format!("route replace {dest} via {}", route.via));
    }
    for (name, lines) in &batches {
        let mut script = lines.join("\n");
        script.push('\n');
        cmd::run_with_input("ip", &["-n", name, "-batch", "-"], Some(&script))?;
    }

    for (name, dev) in &plan.tx_checksum_off {
        netns::exec_ok(name, "ethtool", &["-K", dev, "tx", "off"])?;
    }
    for (name, config) in &plan.real_servers {
        config.apply(Some(name))?;
    }
    Ok(())
}
