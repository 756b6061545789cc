//! [`KernelNextHops`]: next hops from the kernel's own tables (main routing table, links
//! with their MAC and MTU, neighbours), so rvs forwards the way the director's kernel
//! would route.
//!
//! Refresh model: a refresher thread reads `ip -j link`, `ip -j -4 route`, `ip -j -6 route`
//! and `ip -j neigh` (in the network namespace of the thread that called
//! [`KernelNextHops::start`]) every [`KernelNextHopsConfig::refresh_interval`] and
//! publishes an immutable snapshot when something changed. A lookup on the packet path is
//! a hash-map hit in the handle's own cache (no syscall, no lock); after a snapshot change
//! the handle takes the new snapshot (one uncontended mutex) and clears its cache; a cache
//! miss is a longest-prefix match over the snapshot's routes (routes sorted by prefix
//! length, then metric).
//!
//! A next hop whose neighbour entry is missing (or FAILED/INCOMPLETE) is not resolvable:
//! the lookup returns `None` and asks the refresher (rate-limited per handle) to start
//! resolution, by sending an empty UDP datagram to the discard port (9) of the neighbour
//! from an ordinary socket, which makes the kernel send an ARP request or a neighbour
//! solicitation, and to refresh quickly for a while so that a later lookup succeeds.
//!
//! Limits: only the main table (no policy routing); of a multipath route only the first
//! next hop; STALE neighbours are used as they are (the kernel re-verifies them only when
//! its own traffic uses them).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rvs_packet::MacAddr;
use serde_json::Value;

use crate::nexthop::{NextHop, NextHops};

/// Errors starting the next-hop reader.
#[derive(Debug, thiserror::Error)]
pub enum NextHopError {
    /// `ip` could not be run or failed.
    #[error("`ip {command}`: {detail}")]
    Ip {
        /// The arguments.
        command: String,
        /// What went wrong.
        detail: String,
    },
    /// Its output was not the expected JSON.
    #[error("parsing `ip {command}` output: {detail}")]
    Parse {
        /// The arguments.
        command: String,
        /// What went wrong.
        detail: String,
    },
    /// The refresher thread could not be started.
    #[error("starting the next-hop refresher: {0}")]
    Thread(#[source] std::io::Error),
}

/// Timing of the refresher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelNextHopsConfig {
    /// Regular re-read of the kernel tables.
    pub refresh_interval: Duration,
    /// Least time between two refresh requests from one handle's misses.
    pub miss_signal_interval: Duration,
    /// After a resolution was started, re-read this often ...
    pub fast_refresh_interval: Duration,
    /// ... for this long.
    pub fast_refresh_period: Duration,
    /// Least time between two resolution probes of the same neighbour.
    pub probe_interval: Duration,
}

impl Default for KernelNextHopsConfig {
    /// 1 s refresh; misses signal at most every 50 ms per handle; after a probe, refresh
    /// every 50 ms for 1 s; a neighbour is probed at most every 200 ms.
    fn default() -> Self {
        KernelNextHopsConfig {
            refresh_interval: Duration::from_secs(1),
            miss_signal_interval: Duration::from_millis(50),
            fast_refresh_interval: Duration::from_millis(50),
            fast_refresh_period: Duration::from_secs(1),
            probe_interval: Duration::from_millis(200),
        }
    }
}

/// A link the kernel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    mac: MacAddr,
    mtu: u32,
}

/// One route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    /// Network as a 128-bit number (IPv4 in the low 32 bits).
    net: u128,
    prefix: u8,
    v6: bool,
    metric: u32,
    gateway: Option<IpAddr>,
    ifindex: u32,
    mtu: Option<u32>,
}

/// Everything a lookup needs, read at one refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Snapshot {
    links: HashMap<u32, Link>,
    /// Longest prefix first, then lowest metric.
    routes: Vec<Route>,
    neighbours: HashMap<(u32, IpAddr), MacAddr>,
}

fn addr_bits(addr: IpAddr) -> (u128, bool) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
        IpAddr::V6(v6) => (u128::from(v6), true),
    }
}

fn prefix_mask(prefix: u8, v6: bool) -> u128 {
    let width = if v6 { 128 } else { 32 };
    let prefix = u32::from(prefix.min(width));
    if prefix == 0 {
        0
    } else {
        let full: u128 = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        full & !(full >> prefix)
    }
}

impl Snapshot {
    /// The best route for `dst`.
    fn route(&self, dst: IpAddr) -> Option<&Route> {
        let (bits, v6) = addr_bits(dst);
        self.routes.iter().find(|route| route.v6 == v6 && bits & prefix_mask(route.prefix, v6) == route.net)
    }

    /// The next hop for `dst`, or the (ifindex, neighbour address) still to resolve.
    fn resolve(&self, dst: IpAddr) -> Result<NextHop, Option<(u32, IpAddr)>> {
        let route = self.route(dst).ok_or(None)?;
        let link = self.links.get(&route.ifindex).ok_or(None)?;
        let neighbour = route.gateway.unwrap_or(dst);
        let Some(dst_mac) = self.neighbours.get(&(route.ifindex, neighbour)) else {
            return Err(Some((route.ifindex, neighbour)));
        };
        let mtu = route.mtu.map_or(link.mtu, |mtu| mtu.min(link.mtu));
        Ok(NextHop {
            ifindex: route.ifindex,
            src_mac: link.mac,
            dst_mac: *dst_mac,
            mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
        })
    }
}

fn parse_mac(text: &str) -> Option<MacAddr> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(MacAddr(mac))
}

fn as_array<'a>(json: &'a Value, command: &str) -> Result<&'a Vec<Value>, NextHopError> {
    json.as_array().ok_or_else(|| NextHopError::Parse { command: command.to_owned(), detail: "not an array".into() })
}

fn parse_json(text: &str, command: &str) -> Result<Value, NextHopError> {
    // `ip -j` prints nothing at all for an empty table.
    if text.trim().is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(text).map_err(|e| NextHopError::Parse { command: command.to_owned(), detail: e.to_string() })
}

/// Interface name -> ifindex.
type InterfaceNames = HashMap<String, u32>;

/// Links from `ip -j link show`: Ethernet-like links with a MAC, keyed by ifindex; also
/// the name -> ifindex map the other tables need.
fn parse_links(text: &str) -> Result<(HashMap<u32, Link>, InterfaceNames), NextHopError> {
    let command = "-j link show";
    let json = parse_json(text, command)?;
    let mut links = HashMap::new();
    let mut names = HashMap::new();
    for entry in as_array(&json, command)? {
        let Some(ifindex) = entry.get("ifindex").and_then(Value::as_u64).and_then(|i| u32::try_from(i).ok()) else {
            continue;
        };
        if let Some(name) = entry.get("ifname").and_then(Value::as_str) {
            names.insert(name.to_owned(), ifindex);
        }
        let ether = entry.get("link_type").and_then(Value::as_str) == Some("ether");
        let mac = entry.get("address").and_then(Value::as_str).and_then(parse_mac);
        let mtu = entry.get("mtu").and_then(Value::as_u64).and_then(|m| u32::try_from(m).ok());
        if let (true, Some(mac), Some(mtu)) = (ether, mac, mtu) {
            links.insert(ifindex, Link { mac, mtu });
        }
    }
    Ok((links, names))
}

/// Parses a route destination: `default`, `a.b.c.d`, `a.b.c.d/n`, or the IPv6 forms.
fn parse_destination(text: &str, v6: bool) -> Option<(u128, u8)> {
    let width: u8 = if v6 { 128 } else { 32 };
    if text == "default" {
        return Some((0, 0));
    }
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, prefix.parse::<u8>().ok().filter(|p| *p <= width)?),
        None => (text, width),
    };
    let bits = if v6 {
        u128::from(addr.parse::<Ipv6Addr>().ok()?)
    } else {
        u128::from(u32::from(addr.parse::<Ipv4Addr>().ok()?))
    };
    Some((bits & prefix_mask(prefix, v6), prefix))
}

/// Routes from `ip -j -4|-6 route show table main`.
fn parse_routes(text: &str, v6: bool, names: &HashMap<String, u32>) -> Result<Vec<Route>, NextHopError> {
    let command = if v6 { "-j -6 route show" } else { "-j -4 route show" };
    let json = parse_json(text, command)?;
    let mut routes = Vec::new();
    for entry in as_array(&json, command)? {
        // Only plain unicast routes lead to a next hop (not blackhole, unreachable ...).
        if entry.get("type").and_then(Value::as_str).is_some_and(|kind| kind != "unicast") {
            continue;
        }
        let linkdown = |hop: &Value| {
            hop.get("flags").and_then(Value::as_array).is_some_and(|flags| flags.iter().any(|f| f == "linkdown"))
        };
        // A multipath route lists its hops under "nexthops": take the first.
        let hop = entry.get("nexthops").and_then(Value::as_array).and_then(|hops| hops.first()).unwrap_or(entry);
        if linkdown(hop) || linkdown(entry) {
            continue;
        }
        let Some((net, prefix)) = entry.get("dst").and_then(Value::as_str).and_then(|dst| parse_destination(dst, v6))
        else {
            continue;
        };
        let Some(ifindex) = hop.get("dev").and_then(Value::as_str).and_then(|dev| names.get(dev)).copied() else {
            continue;
        };
        let gateway = hop.get("gateway").and_then(Value::as_str).and_then(|gw| gw.parse::<IpAddr>().ok());
        let metric = entry.get("metric").and_then(Value::as_u64).and_then(|m| u32::try_from(m).ok()).unwrap_or(0);
        let mtu = entry.get("metrics").and_then(Value::as_array).and_then(|metrics| {
            metrics.iter().find_map(|m| m.get("mtu").and_then(Value::as_u64).and_then(|m| u32::try_from(m).ok()))
        });
        routes.push(Route { net, prefix, v6, metric, gateway, ifindex, mtu });
    }
    Ok(routes)
}

/// Usable neighbour entries from `ip -j neigh show`, keyed by (ifindex, address).
fn parse_neighbours(text: &str, names: &HashMap<String, u32>) -> Result<HashMap<(u32, IpAddr), MacAddr>, NextHopError> {
    let command = "-j neigh show";
    let json = parse_json(text, command)?;
    let mut neighbours = HashMap::new();
    for entry in as_array(&json, command)? {
        let unusable = entry
            .get("state")
            .and_then(Value::as_array)
            .is_some_and(|states| states.iter().any(|s| s == "FAILED" || s == "INCOMPLETE"));
        let addr = entry.get("dst").and_then(Value::as_str).and_then(|a| a.parse::<IpAddr>().ok());
        let ifindex = entry.get("dev").and_then(Value::as_str).and_then(|dev| names.get(dev)).copied();
        let mac = entry.get("lladdr").and_then(Value::as_str).and_then(parse_mac);
        if let (false, Some(addr), Some(ifindex), Some(mac)) = (unusable, addr, ifindex, mac) {
            neighbours.insert((ifindex, addr), mac);
        }
    }
    Ok(neighbours)
}

/// Builds a snapshot from the four `ip -j` outputs.
fn build_snapshot(links: &str, routes_v4: &str, routes_v6: &str, neigh: &str) -> Result<Snapshot, NextHopError> {
    let (links, names) = parse_links(links)?;
    let mut routes = parse_routes(routes_v4, false, &names)?;
    routes.extend(parse_routes(routes_v6, true, &names)?);
    routes.sort_by(|a, b| b.prefix.cmp(&a.prefix).then(a.metric.cmp(&b.metric)));
    let neighbours = parse_neighbours(neigh, &names)?;
    Ok(Snapshot { links, routes, neighbours })
}

fn run_ip(args: &[&str]) -> Result<String, NextHopError> {
    let command = args.join(" ");
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NextHopError::Ip { command: command.clone(), detail: e.to_string() })?;
    if !output.status.success() {
        let detail = format!("{}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
        return Err(NextHopError::Ip { command, detail });
    }
    String::from_utf8(output.stdout).map_err(|e| NextHopError::Parse { command, detail: e.to_string() })
}

fn read_kernel() -> Result<Snapshot, NextHopError> {
    let links = run_ip(&["-j", "link", "show"])?;
    let routes_v4 = run_ip(&["-j", "-4", "route", "show", "table", "main"])?;
    let routes_v6 = run_ip(&["-j", "-6", "route", "show", "table", "main"])?;
    let neigh = run_ip(&["-j", "neigh", "show"])?;
    build_snapshot(&links, &routes_v4, &routes_v6, &neigh)
}

/// Requests from the handles to the refresher.
#[derive(Debug, Default)]
struct Requests {
    refresh: bool,
    resolve: Vec<(u32, IpAddr)>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    snapshot: Mutex<Arc<Snapshot>>,
    generation: AtomicU64,
    requests: Mutex<Requests>,
    wake: Condvar,
    refreshes: AtomicU64,
    probes: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Owns the refresher thread; stops it when the last handle goes.
#[derive(Debug)]
struct Refresher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Refresher {
    fn drop(&mut self) {
        lock(&self.shared.requests).stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Next hops from the kernel's tables. Clone it to give each worker its own cache; the
/// refresher thread runs until the last clone is dropped.
#[derive(Debug)]
pub struct KernelNextHops {
    refresher: Arc<Refresher>,
    snapshot: Arc<Snapshot>,
    generation: u64,
    cache: HashMap<IpAddr, NextHop>,
    miss_signal_interval: Duration,
    last_miss_signal: Option<Instant>,
}

impl Clone for KernelNextHops {
    fn clone(&self) -> Self {
        KernelNextHops {
            refresher: Arc::clone(&self.refresher),
            snapshot: Arc::clone(&self.snapshot),
            generation: self.generation,
            cache: HashMap::new(),
            miss_signal_interval: self.miss_signal_interval,
            last_miss_signal: None,
        }
    }
}

impl KernelNextHops {
    /// Reads the kernel tables once (failing if `ip` cannot) and starts the refresher.
    pub fn start() -> Result<KernelNextHops, NextHopError> {
        KernelNextHops::start_with(KernelNextHopsConfig::default())
    }

    /// Like [`KernelNextHops::start`] with explicit timing.
    pub fn start_with(config: KernelNextHopsConfig) -> Result<KernelNextHops, NextHopError> {
        let snapshot = Arc::new(read_kernel()?);
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Arc::clone(&snapshot)),
            generation: AtomicU64::new(1),
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
            refreshes: AtomicU64::new(1),
            probes: AtomicU64::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        let miss_signal_interval = config.miss_signal_interval;
        let thread = std::thread::Builder::new()
            .name("rvs-nexthops".into())
            .spawn(move || refresher_loop(&thread_shared, &config))
            .map_err(NextHopError::Thread)?;
        Ok(KernelNextHops {
            refresher: Arc::new(Refresher { shared, thread: Some(thread) }),
            snapshot,
            generation: 1,
            cache: HashMap::new(),
            miss_signal_interval,
            last_miss_signal: None,
        })
    }

    /// How many times the kernel tables were read so far.
    pub fn refresh_count(&self) -> u64 {
        self.refresher.shared.refreshes.load(Ordering::Relaxed)
    }

    /// How many neighbour resolutions were started so far.
    pub fn probe_count(&self) -> u64 {
        self.refresher.shared.probes.load(Ordering::Relaxed)
    }

    /// Asks for an immediate re-read of the kernel tables (e.g. after a configuration
    /// change); returns at once.
    pub fn request_refresh(&self) {
        lock(&self.refresher.shared.requests).refresh = true;
        self.refresher.shared.wake.notify_one();
    }

    fn signal_miss(&mut self, unresolved: Option<(u32, IpAddr)>) {
        let now = Instant::now();
        if self.last_miss_signal.is_some_and(|last| now.duration_since(last) < self.miss_signal_interval) {
            return;
        }
        self.last_miss_signal = Some(now);
        let shared = &self.refresher.shared;
        {
            let mut requests = lock(&shared.requests);
            requests.refresh = true;
            if let Some(neighbour) = unresolved
                && !requests.resolve.contains(&neighbour)
                && requests.resolve.len() < 1024
            {
                requests.resolve.push(neighbour);
            }
        }
        shared.wake.notify_one();
    }
}

impl NextHops for KernelNextHops {
    fn lookup(&mut self, dst: IpAddr) -> Option<NextHop> {
        let shared = &self.refresher.shared;
        let generation = shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.snapshot = Arc::clone(&lock(&shared.snapshot));
            self.generation = generation;
            self.cache.clear();
        }
        if let Some(hop) = self.cache.get(&dst) {
            return Some(*hop);
        }
        match self.snapshot.resolve(dst) {
            Ok(hop) => {
                // Bound the cache: a scan of many addresses must not grow it forever.
                if self.cache.len() >= 65536 {
                    self.cache.clear();
                }
                self.cache.insert(dst, hop);
                Some(hop)
            }
            Err(unresolved) => {
                self.signal_miss(unresolved);
                None
            }
        }
    }
}

/// Sends an empty UDP datagram to the discard port of `neighbour` so that the kernel
/// resolves its link-layer address.
fn probe(ifindex: u32, neighbour: IpAddr) {
    let (bind, target): (SocketAddr, SocketAddr) = match neighbour {
        IpAddr::V4(v4) => ((Ipv4Addr::UNSPECIFIED, 0).into(), (v4, 9).into()),
        IpAddr::V6(v6) => {
            // Link-local neighbours need the interface as scope.
            let scope = if v6.is_unicast_link_local() { ifindex } else { 0 };
            ((Ipv6Addr::UNSPECIFIED, 0).into(), SocketAddrV6::new(v6, 9, 0, scope).into())
        }
    };
    if let Ok(socket) = UdpSocket::bind(bind) {
        // Unreachable neighbours fail later, asynchronously; nothing to do about it here.
        let _ = socket.send_to(&[], target);
    }
}

fn refresher_loop(shared: &Shared, config: &KernelNextHopsConfig) {
    let mut last_refresh = Instant::now();
    let mut fast_until: Option<Instant> = None;
    let mut last_probe: HashMap<IpAddr, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        let interval = match fast_until {
            Some(until) if now < until => config.fast_refresh_interval,
            _ => config.refresh_interval,
        };
        let deadline = last_refresh + interval;
        let (resolve, stop) = {
            let mut requests = lock(&shared.requests);
            while !requests.stop && !requests.refresh && Instant::now() < deadline {
                let wait = deadline.saturating_duration_since(Instant::now());
                requests = shared.wake.wait_timeout(requests, wait).map(|(guard, _)| guard).unwrap_or_else(|p| {
                    let (guard, _) = p.into_inner();
                    guard
                });
            }
            requests.refresh = false;
            (std::mem::take(&mut requests.resolve), requests.stop)
        };
        if stop {
            return;
        }
        let now = Instant::now();
        last_probe.retain(|_, at| now.duration_since(*at) < config.probe_interval);
        let mut probed = false;
        for (ifindex, neighbour) in resolve {
            if last_probe.contains_key(&neighbour) {
                continue;
            }
            probe(ifindex, neighbour);
            last_probe.insert(neighbour, now);
            shared.probes.fetch_add(1, Ordering::Relaxed);
            probed = true;
        }
        if probed {
            fast_until = Some(now + config.fast_refresh_period);
        }
        last_refresh = Instant::now();
        match read_kernel() {
            Ok(snapshot) => {
                shared.refreshes.fetch_add(1, Ordering::Relaxed);
                let mut current = lock(&shared.snapshot);
                if **current != snapshot {
                    *current = Arc::new(snapshot);
                    shared.generation.fetch_add(1, Ordering::Release);
                }
            }
            Err(err) => tracing::warn!(%err, "reading kernel next hops; keeping the previous tables"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-written in the shape `ip -j` prints (iproute2's JSON output: one object per
    // link/route/neighbour, names as keys).
    const LINKS: &str = r#"[
        {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00"},
        {"ifindex":5,"ifname":"lan0","flags":["UP"],"mtu":1500,"link_type":"ether","address":"02:72:76:02:00:0b"},
        {"ifindex":7,"ifname":"wan0","flags":["UP"],"mtu":9000,"link_type":"ether","address":"02:72:76:01:00:0b"}
    ]"#;
    const ROUTES_V4: &str = r#"[
        {"dst":"default","gateway":"198.18.1.1","dev":"wan0","flags":[]},
        {"dst":"198.18.1.0/24","dev":"wan0","protocol":"kernel","scope":"link","prefsrc":"198.18.1.11","flags":[]},
        {"dst":"198.18.2.0/24","dev":"lan0","protocol":"kernel","scope":"link","prefsrc":"198.18.2.11","flags":[]},
        {"dst":"198.18.9.0/24","gateway":"198.18.2.1","dev":"lan0","metric":20,"flags":[],"metrics":[{"mtu":1400}]},
        {"dst":"198.18.9.0/24","gateway":"198.18.2.2","dev":"lan0","metric":10,"flags":[]},
        {"type":"blackhole","dst":"198.18.66.0/24","flags":[]}
    ]"#;
    const ROUTES_V6: &str = r#"[
        {"dst":"fd00:0:0:2::/64","dev":"lan0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
        {"dst":"fe80::/64","dev":"lan0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
        {"dst":"default","gateway":"fe80::1","dev":"lan0","metric":1024,"flags":[],"pref":"medium"}
    ]"#;
    const NEIGH: &str = r#"[
        {"dst":"198.18.1.1","dev":"wan0","lladdr":"02:72:76:01:00:01","state":["REACHABLE"]},
        {"dst":"198.18.2.21","dev":"lan0","lladdr":"02:72:76:02:00:15","state":["STALE"]},
        {"dst":"198.18.2.22","dev":"lan0","state":["FAILED"]},
        {"dst":"198.18.2.2","dev":"lan0","lladdr":"02:72:76:02:00:02","state":["PERMANENT"]},
        {"dst":"fe80::1","dev":"lan0","lladdr":"02:72:76:02:00:01","router":null,"state":["REACHABLE"]}
    ]"#;

    fn snapshot() -> Snapshot {
        build_snapshot(LINKS, ROUTES_V4, ROUTES_V6, NEIGH).unwrap()
    }

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn on_link_address_uses_its_own_neighbour_entry() {
        let hop = snapshot().resolve(v4("198.18.2.21")).unwrap();
        assert_eq!(hop.ifindex, 5);
        assert_eq!(hop.src_mac, MacAddr([0x02, 0x72, 0x76, 0x02, 0x00, 0x0b]));
        assert_eq!(hop.dst_mac, MacAddr([0x02, 0x72, 0x76, 0x02, 0x00, 0x15]));
        assert_eq!(hop.mtu, 1500);
    }

    #[test]
    fn routed_address_uses_the_gateway_of_the_longest_prefix_with_lowest_metric() {
        // 198.18.9.0/24 beats the default route; of its two routes metric 10 (via .2) wins.
        let hop = snapshot().resolve(v4("198.18.9.77")).unwrap();
        assert_eq!(hop.dst_mac, MacAddr([0x02, 0x72, 0x76, 0x02, 0x00, 0x02]));
        // Anything else leaves by the default route on wan0 (MTU 9000).
        let hop = snapshot().resolve(v4("198.18.200.1")).unwrap();
        assert_eq!((hop.ifindex, hop.mtu), (7, 9000));
        assert_eq!(hop.dst_mac, MacAddr([0x02, 0x72, 0x76, 0x01, 0x00, 0x01]));
    }

    #[test]
    fn route_mtu_caps_the_link_mtu() {
        let mut snap = snapshot();
        snap.routes.retain(|r| r.metric != 10);
        snap.neighbours.insert((5, v4("198.18.2.1")), MacAddr([2; 6]));
        assert_eq!(snap.resolve(v4("198.18.9.1")).unwrap().mtu, 1400);
    }

    #[test]
    fn unresolved_and_unroutable_addresses() {
        // FAILED neighbour: resolution must be started for the address itself.
        assert_eq!(snapshot().resolve(v4("198.18.2.22")), Err(Some((5, v4("198.18.2.22")))));
        // Blackhole routes are skipped; the default route then applies.
        assert_eq!(snapshot().resolve(v4("198.18.66.1")).unwrap().ifindex, 7);
        let mut snap = snapshot();
        snap.routes.retain(|r| r.prefix != 0);
        assert_eq!(snap.resolve(v4("203.0.113.1")), Err(None));
    }

    #[test]
    fn ipv6_default_route_via_link_local_gateway() {
        let hop = snapshot().resolve("fd00:0:0:77::5".parse().unwrap()).unwrap();
        assert_eq!(hop.ifindex, 5);
        assert_eq!(hop.dst_mac, MacAddr([0x02, 0x72, 0x76, 0x02, 0x00, 0x01]));
        // On-link IPv6 without a neighbour entry: needs resolution.
        let target: IpAddr = "fd00:0:0:2::21".parse().unwrap();
        assert_eq!(snapshot().resolve(target), Err(Some((5, target))));
    }

    #[test]
    fn destinations_and_macs_parse_strictly() {
        assert_eq!(parse_destination("198.18.2.7/24", false), Some((u128::from(0xc612_0200u32), 24)));
        assert_eq!(parse_destination("198.18.2.7", false), Some((u128::from(0xc612_0207u32), 32)));
        assert_eq!(parse_destination("198.18.2.7/33", false), None);
        assert_eq!(parse_destination("default", true), Some((0, 0)));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:01:02"), None);
        assert!(build_snapshot("", "", "", "").unwrap().routes.is_empty());
        assert!(build_snapshot("{", "", "", "").is_err());
    }
}
