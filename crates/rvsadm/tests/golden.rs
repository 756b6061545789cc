//! Golden tests of every listing, rendered from hand-built tables. Each expected text is
//! derived from the ipvsadm printf format quoted above it (trailing spaces are real; they
//! come from `%-10u`-style padding of the last column).

use std::net::IpAddr;

use rvs_api::{
    ConnInfo, DestInfo, DestSpec, MethodSpec, NetmaskSpec, PersistenceSpec, Proto, ServiceId, ServiceInfo, ServiceSpec,
    StatsInfo, SyncDaemonSpec, SyncRole, Table, TimeoutsInfo,
};
use rvsadm::names::{Names, NumericNames};
use rvsadm::parse::Format;
use rvsadm::render::conns::render_conns;
use rvsadm::render::misc::{render_daemons, render_timeouts};
use rvsadm::render::save::render_save;
use rvsadm::render::table::{render_all, render_one};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceId {
    ServiceId::Addr { protocol: Proto::Tcp, addr: ip(addr), port }
}

fn svc(id: ServiceId, sched: &str) -> ServiceInfo {
    ServiceInfo {
        spec: ServiceSpec {
            id,
            scheduler: sched.into(),
            sched_flags: vec![],
            persistence: None,
            one_packet: false,
            pe: None,
        },
        stats: StatsInfo::default(),
        dests: vec![],
    }
}

fn dest(addr: &str, port: u16, method: MethodSpec, weight: u32, active: u32, inactive: u32) -> DestInfo {
    DestInfo {
        spec: DestSpec { addr: ip(addr), port, method, weight, u_threshold: 0, l_threshold: 0 },
        active_conns: active,
        inactive_conns: inactive,
        persist_conns: 0,
        stats: StatsInfo::default(),
    }
}

fn tunnel(t: &str, port: u16, csum: &str) -> MethodSpec {
    MethodSpec::Tunnel { tun_type: t.into(), tun_port: port, tun_csum: csum.into() }
}

fn numeric() -> Format {
    Format { numeric: true, ..Format::default() }
}

/// The example table of the reference (§2.4), deliberately out of order.
fn example_table() -> Table {
    let mut fw = svc(ServiceId::Fwmark { mark: 1, ipv6: false }, "rr");
    fw.dests.push(dest("10.0.0.5", 0, MethodSpec::Local, 1, 0, 0));
    let mut udp = svc(ServiceId::Addr { protocol: Proto::Udp, addr: ip("192.168.1.100"), port: 53 }, "sh");
    udp.spec.sched_flags = vec!["sh-fallback".into(), "sh-port".into()];
    udp.spec.one_packet = true;
    udp.dests.push(dest("10.0.0.4", 53, tunnel("ipip", 0, "nocsum"), 3, 0, 0));
    let mut web = svc(tcp("192.168.1.100", 80), "wlc");
    web.spec.persistence =
        Some(PersistenceSpec { timeout: 300, netmask: NetmaskSpec::V4("255.255.255.0".parse().unwrap()) });
    web.dests.push(dest("10.0.0.3", 80, MethodSpec::Masq, 0, 0, 5));
    web.dests.push(dest("10.0.0.2", 80, MethodSpec::Route, 1, 12, 34));
    Table { conn_tab_size: 4096, services: vec![fw, udp, web], stats: StatsInfo::default() }
}

#[test]
fn default_view_with_banner_sorted() {
    // Banner "IP Virtual Server version %d.%d.%d (size=%d)\n"; header verbatim; service
    // "%s %s" + " (%s)" + " persistent %u" + " mask %s" + " ops"; dest
    // "  -> %-28s %-7s %-6d %-10u %-10u\n". Order: TCP < UDP, fwmark last; dests by address.
    let expected = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  192.168.1.100:80 wlc persistent 300 mask 255.255.255.0\n",
        "  -> 10.0.0.2:80                  Route   1      12         34        \n",
        "  -> 10.0.0.3:80                  Masq    0      0          5         \n",
        "UDP  192.168.1.100:53 sh (sh-fallback,sh-port) ops\n",
        "  -> 10.0.0.4:53                  Tunnel  3      0          0         \n",
        "FWM  1 rr\n",
        "  -> 10.0.0.5:0                   Local   1      0          0         \n",
    );
    assert_eq!(render_all(&example_table(), &numeric(), &NumericNames), expected);
}

#[test]
fn nosort_keeps_daemon_order() {
    let f = Format { nosort: true, ..numeric() };
    let text = render_all(&example_table(), &f, &NumericNames);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[3], "FWM  1 rr");
    assert_eq!(lines[7], "TCP  192.168.1.100:80 wlc persistent 300 mask 255.255.255.0");
    assert!(lines[8].starts_with("  -> 10.0.0.3:80"));
}

#[test]
fn single_service_has_no_banner() {
    let t = example_table();
    let expected = concat!(
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "FWM  1 rr\n",
        "  -> 10.0.0.5:0                   Local   1      0          0         \n",
    );
    assert_eq!(render_one(&t.services[0], &numeric(), &NumericNames), expected);
}

fn stats(conns: u64, inpkts: u64, outpkts: u64, inbytes: u64, outbytes: u64) -> StatsInfo {
    StatsInfo { conns, inpkts, outpkts, inbytes, outbytes, ..StatsInfo::default() }
}

fn stats_table() -> Table {
    let mut web = svc(tcp("192.168.1.100", 80), "wlc");
    web.stats = stats(1234, 56789, 0, 123_456_789, 0);
    let mut d = dest("10.0.0.2", 80, MethodSpec::Route, 1, 0, 0);
    d.stats = stats(1234, 56789, 2_500_000_000, 250_000_000_000, 300_000_000_000_000);
    web.dests.push(d);
    Table { conn_tab_size: 4096, services: vec![web], stats: StatsInfo::default() }
}

#[test]
fn stats_view_scales_large_numbers() {
    // Header "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"; rows "%-33s" / "  -> %-28s"
    // then largenum each: "%9llu" < 1e8, "%8lluK" < 1e9, "%8lluM" < 1e11, "%8lluG" < 1e14, "%8lluT".
    let f = Format { stats: true, ..numeric() };
    let expected = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.100:80                 1234    56789        0  123456K        0\n",
        "  -> 10.0.0.2:80                      1234    56789    2500M     250G     300T\n",
    );
    assert_eq!(render_all(&stats_table(), &f, &NumericNames), expected);
}

#[test]
fn exact_stats_widen_columns() {
    // --exact: "%*llu" with width max(9, len + 1).
    let f = Format { stats: true, exact: true, ..numeric() };
    let expected = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.100:80                 1234    56789        0 123456789        0\n",
        "  -> 10.0.0.2:80                      1234    56789 2500000000 250000000000 300000000000000\n",
    );
    assert_eq!(render_all(&stats_table(), &f, &NumericNames), expected);
}

#[test]
fn rate_view() {
    // Service "%-33s" + 5 largenum; dest "  -> %-28s %8llu %8llu %8llu" + 2 largenum.
    let rates = StatsInfo { cps: 12, inpps: 345, outpps: 0, inbps: 98765, outbps: 123_456_789, ..StatsInfo::default() };
    let mut s = svc(ServiceId::Addr { protocol: Proto::Udp, addr: ip("192.168.1.100"), port: 53 }, "rr");
    s.stats = rates;
    let mut d = dest("10.0.0.4", 53, MethodSpec::Masq, 1, 0, 0);
    d.stats = rates;
    s.dests.push(d);
    let t = Table { conn_tab_size: 4096, services: vec![s], stats: StatsInfo::default() };
    let f = Format { rate: true, ..numeric() };
    let expected = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
        "  -> RemoteAddress:Port\n",
        "UDP  192.168.1.100:53                   12      345        0    98765  123456K\n",
        "  -> 10.0.0.4:53                        12      345        0    98765  123456K\n",
    );
    assert_eq!(render_all(&t, &f, &NumericNames), expected);
    // --stats wins over --rate, as in ipvsadm.
    let both = Format { stats: true, rate: true, ..numeric() };
    assert!(render_all(&t, &both, &NumericNames).contains("Conns"));
}

#[test]
fn thresholds_and_persistent_conn_views() {
    let mut s = svc(tcp("192.168.1.100", 80), "wlc");
    let mut d = dest("10.0.0.2", 80, MethodSpec::Route, 1, 12, 34);
    d.spec.u_threshold = 100;
    d.spec.l_threshold = 75;
    d.persist_conns = 7;
    s.dests.push(d);
    // Header "%-33s %-10s %-10s %-10s %-10s\n"; dest "  -> %-28s %-10u %-10u %-10u %-10u\n";
    // the service line is the default one.
    let f = Format { thresholds: true, ..numeric() };
    let expected = concat!(
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.100:80 wlc\n",
        "  -> 10.0.0.2:80                  100        75         12         34        \n",
    );
    assert_eq!(render_one(&s, &f, &NumericNames), expected);
    // Header "%-33s %-9s %-11s %-10s %-10s\n"; dest "  -> %-28s %-9u %-11u %-10u %-10u\n".
    let f = Format { persistent_conn: true, ..numeric() };
    let expected = concat!(
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.100:80 wlc\n",
        "  -> 10.0.0.2:80                  1         7           12         34        \n",
    );
    assert_eq!(render_one(&s, &f, &NumericNames), expected);
}

#[test]
fn tun_info_view() {
    // Dest "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n"; TunnelInfo ipip / gue:%d:%s / gre:%s
    // with flags -c, +c, r+c; n/a when not tunnelled.
    let mut s = svc(tcp("192.168.1.100", 80), "rr");
    s.dests.push(dest("10.0.0.7", 80, tunnel("ipip", 0, "nocsum"), 3, 0, 0));
    s.dests.push(dest("10.0.0.6", 80, tunnel("gre", 0, "remcsum"), 2, 0, 0));
    s.dests.push(dest("10.0.0.4", 80, tunnel("gue", 6080, "csum"), 1, 0, 0));
    s.dests.push(dest("10.0.0.2", 80, MethodSpec::Route, 1, 12, 34));
    let f = Format { tun_info: true, ..numeric() };
    let expected = concat!(
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        "TCP  192.168.1.100:80 rr\n",
        "  -> 10.0.0.2:80                  Route   n/a           1      12         34        \n",
        "  -> 10.0.0.4:80                  Tunnel  gue:6080:+c   1      0          0         \n",
        "  -> 10.0.0.6:80                  Tunnel  gre:r+c       2      0          0         \n",
        "  -> 10.0.0.7:80                  Tunnel  ipip          3      0          0         \n",
    );
    assert_eq!(render_one(&s, &f, &NumericNames), expected);
}

#[test]
fn ipv6_service_mask_and_pe() {
    // IPv6: "[addr]:port", not truncated; mask " mask %i" when the prefix is not 128;
    // " pe %s" only for persistent services.
    let mut s = svc(tcp("2001:db8::1", 80), "wlc");
    s.spec.persistence = Some(PersistenceSpec { timeout: 360, netmask: NetmaskSpec::V6(64) });
    s.spec.pe = Some("sip".into());
    s.dests.push(dest("2001:db8::10", 80, MethodSpec::Masq, 1, 0, 0));
    let expected = concat!(
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  [2001:db8::1]:80 wlc persistent 360 mask 64 pe sip\n",
        "  -> [2001:db8::10]:80            Masq    1      0          0         \n",
    );
    assert_eq!(render_one(&s, &numeric(), &NumericNames), expected);
    let mut np = svc(tcp("10.0.0.1", 80), "wlc");
    np.spec.pe = Some("sip".into());
    assert!(render_one(&np, &numeric(), &NumericNames).contains("TCP  10.0.0.1:80 wlc\n"));
}

/// Names for the truncation test.
struct LongNames;

impl Names for LongNames {
    fn host_v4(&self, _: &str) -> Option<std::net::Ipv4Addr> {
        None
    }
    fn port_by_name(&self, _: &str, _: Proto) -> Option<u16> {
        None
    }
    fn host_by_addr(&self, addr: IpAddr) -> Option<String> {
        match addr.to_string().as_str() {
            "192.0.2.1" => Some("a-very-long-virtual-host-name.example.net".into()),
            "192.0.2.2" => Some("real-server-number-one.example.net".into()),
            _ => None,
        }
    }
    fn service_by_port(&self, port: u16, proto: Proto) -> Option<String> {
        (port == 80 && proto == Proto::Tcp).then(|| "http".into())
    }
}

#[test]
fn names_and_ipv4_truncation() {
    // "%-4s %s" cut to 33 bytes for IPv4 services; dest names cut to 28 bytes.
    let mut s = svc(tcp("192.0.2.1", 80), "rr");
    s.dests.push(dest("192.0.2.2", 80, MethodSpec::Masq, 1, 0, 0));
    let expected = concat!(
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  a-very-long-virtual-host-nam rr\n",
        "  -> real-server-number-one.examp Masq    1      0          0         \n",
    );
    assert_eq!(render_one(&s, &Format::default(), &LongNames), expected);
}

#[test]
fn sort_order_follows_ipvsadm_including_the_overflow_quirk() {
    // Services: fwmark difference first (non-fwmark first), then family (IPv4 first), protocol
    // (TCP < UDP < SCTP), address as (int)(a - b): 192.168.0.1 - 10.0.0.1 overflows negative,
    // so 192.168.0.1 lists before 10.0.0.1.
    let services = vec![
        svc(ServiceId::Fwmark { mark: 2, ipv6: true }, "rr"),
        svc(ServiceId::Addr { protocol: Proto::Sctp, addr: ip("10.0.0.1"), port: 80 }, "rr"),
        svc(tcp("2001:db8::1", 80), "rr"),
        svc(tcp("10.0.0.1", 443), "rr"),
        svc(ServiceId::Fwmark { mark: 1, ipv6: false }, "rr"),
        svc(tcp("10.0.0.1", 80), "rr"),
        svc(ServiceId::Addr { protocol: Proto::Udp, addr: ip("10.0.0.1"), port: 53 }, "rr"),
        svc(tcp("192.168.0.1", 80), "rr"),
    ];
    let t = Table { conn_tab_size: 4096, services, stats: StatsInfo::default() };
    let text = render_all(&t, &numeric(), &NumericNames);
    let order: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(
        order,
        vec![
            "TCP  192.168.0.1:80 rr",
            "TCP  10.0.0.1:80 rr",
            "TCP  10.0.0.1:443 rr",
            "UDP  10.0.0.1:53 rr",
            "SCTP 10.0.0.1:80 rr",
            "TCP  [2001:db8::1]:80 rr",
            "FWM  1 rr",
            "FWM  2 IPv6 rr",
        ]
    );
}

#[test]
fn connection_listing() {
    // Header "pro expire %-11s %-18s %-18s %s\n"; rows "%-3s %-6s %-11s %-18s %-18s %s\n" with
    // expire "%02d:%02d" of minutes and seconds (minutes may pass 99).
    let conns = vec![
        ConnInfo {
            protocol: "TCP".into(),
            expires: 895,
            state: "ESTABLISHED".into(),
            caddr: ip("203.0.113.7"),
            cport: 51234,
            vaddr: ip("192.168.1.100"),
            vport: 80,
            daddr: ip("10.0.0.2"),
            dport: 80,
            template: false,
            pe_name: None,
            pe_data: None,
        },
        ConnInfo {
            protocol: "UDP".into(),
            expires: 6000,
            state: "UDP".into(),
            caddr: ip("2001:db8::7"),
            cport: 5353,
            vaddr: ip("2001:db8::1"),
            vport: 53,
            daddr: ip("2001:db8::2"),
            dport: 53,
            template: false,
            pe_name: None,
            pe_data: None,
        },
    ];
    let expected = concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination\n",
        "TCP 14:55  ESTABLISHED 203.0.113.7:51234  192.168.1.100:80   10.0.0.2:80\n",
        "UDP 100:00 UDP         [2001:db8::7]:5353 [2001:db8::1]:53   [2001:db8::2]:53\n",
    );
    assert_eq!(render_conns(&conns, &numeric(), &NumericNames), expected);
}

#[test]
fn connection_listing_with_persistence_engine_data() {
    // Header "pro expire %-11s %-18s %-18s %-18s %-16s %s\n"; rows with PE data use
    // "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n", others the short form.
    let conn = |proto: &str, exp: u64, state: &str, c: (&str, u16), v: (&str, u16), d: (&str, u16)| ConnInfo {
        protocol: proto.into(),
        expires: exp,
        state: state.into(),
        caddr: ip(c.0),
        cport: c.1,
        vaddr: ip(v.0),
        vport: v.1,
        daddr: ip(d.0),
        dport: d.1,
        template: false,
        pe_name: None,
        pe_data: None,
    };
    let mut sip = conn("UDP", 120, "UDP", ("203.0.113.9", 5060), ("192.168.1.100", 5060), ("10.0.0.2", 5060));
    sip.pe_name = Some("sip".into());
    sip.pe_data = Some("call-id-42".into());
    let mut tpl = conn("TCP", 59, "NONE", ("203.0.113.0", 0), ("192.168.1.100", 80), ("10.0.0.2", 80));
    tpl.template = true;
    let f = Format { persistent_conn: true, ..numeric() };
    let expected = concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination        pe name          pe_data\n",
        "UDP 02:00  UDP         203.0.113.9:5060   192.168.1.100:5060 10.0.0.2:5060    sip                call-id-42\n",
        "TCP 00:59  NONE        203.0.113.0:0      192.168.1.100:80   10.0.0.2:80\n",
    );
    assert_eq!(render_conns(&[sip, tpl], &f, &NumericNames), expected);
}

#[test]
fn timeouts_and_daemons() {
    // "Timeout (tcp tcpfin udp): %d %d %d\n".
    assert_eq!(
        render_timeouts(&TimeoutsInfo { tcp: 900, tcpfin: 120, udp: 300 }),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    // "%s sync daemon (mcast=%s, syncid=%d" [", maxlen=%u"] [", group=%s"] [", port=%u"]
    // [", ttl=%u"] ")\n", master first; nothing when none runs.
    assert_eq!(render_daemons(&[]), "");
    let backup = SyncDaemonSpec {
        role: SyncRole::Backup,
        mcast_interface: "eth1".into(),
        syncid: 5,
        maxlen: 1472,
        group: ip("224.0.0.81"),
        port: 8848,
        ttl: 1,
    };
    let master = SyncDaemonSpec { role: SyncRole::Master, mcast_interface: "eth0".into(), syncid: 0, ..backup.clone() };
    assert_eq!(
        render_daemons(&[backup, master]),
        concat!(
            "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
            "backup sync daemon (mcast=eth1, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
        )
    );
}

#[test]
fn save_format() {
    // "-A %s -s %s" [" -p %u" [" -M %s"]] [" --pe %s"] [" -o"] [" -b %s"]; dests
    // "-a %s -r %s %s -w %d" and for tunnels " --tun-type ipip" / " --tun-type gue --tun-port %d
    // --tun-*" / " --tun-type gre --tun-*"; Local saved as -g; thresholds never saved.
    let mut t = example_table();
    t.services[2].dests[1].spec.u_threshold = 50;
    let mut gue = svc(ServiceId::Fwmark { mark: 7, ipv6: true }, "mh");
    gue.spec.sched_flags = vec!["mh-port".into()];
    gue.spec.pe = Some("sip".into());
    gue.dests.push(dest("2001:db8::9", 0, tunnel("gue", 6080, "remcsum"), 2, 0, 0));
    gue.dests.push(dest("2001:db8::8", 0, tunnel("gre", 0, "csum"), 2, 0, 0));
    t.services.push(gue);
    let expected = concat!(
        "-A -t 192.168.1.100:80 -s wlc -p 300 -M 255.255.255.0\n",
        "-a -t 192.168.1.100:80 -r 10.0.0.2:80 -g -w 1\n",
        "-a -t 192.168.1.100:80 -r 10.0.0.3:80 -m -w 0\n",
        "-A -u 192.168.1.100:53 -s sh -o -b sh-fallback,sh-port\n",
        "-a -u 192.168.1.100:53 -r 10.0.0.4:53 -i -w 3 --tun-type ipip\n",
        "-A -f 1 -s rr\n",
        "-a -f 1 -r 10.0.0.5:0 -g -w 1\n",
        "-A -f 7 -6 -s mh --pe sip -b mh-port\n",
        "-a -f 7 -6 -r [2001:db8::8]:0 -i -w 2 --tun-type gre --tun-csum\n",
        "-a -f 7 -6 -r [2001:db8::9]:0 -i -w 2 --tun-type gue --tun-port 6080 --tun-remcsum\n",
    );
    assert_eq!(render_save(&t, true, &NumericNames), expected);
}

#[test]
fn save_without_numeric_uses_names() {
    let mut s = svc(tcp("192.0.2.1", 80), "wlc");
    s.dests.push(dest("192.0.2.2", 80, MethodSpec::Route, 1, 0, 0));
    let t = Table { conn_tab_size: 4096, services: vec![s], stats: StatsInfo::default() };
    assert_eq!(
        render_save(&t, false, &LongNames),
        concat!(
            "-A -t a-very-long-virtual-host-name.example.net:http -s wlc\n",
            "-a -t a-very-long-virtual-host-name.example.net:http -r real-server-number-one.example.net:http -g -w 1\n",
        )
    );
}
