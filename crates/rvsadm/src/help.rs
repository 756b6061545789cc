//! `-h` and `-v` texts (rvsadm's own wording; same commands and options as ipvsadm).

/// The ipvsadm release whose behaviour rvsadm follows.
pub const IPVSADM_COMPAT: &str = "1.31";

/// `-v`: when invoked as `ipvsadm`, the first words are ipvsadm's (`ipvsadm v1.31 …`) so
/// scripts that check the version keep working.
pub fn version(program: &str) -> String {
    let base = program.rsplit('/').next().unwrap_or(program);
    let own = env!("CARGO_PKG_VERSION");
    if base == "ipvsadm" {
        format!("ipvsadm v{IPVSADM_COMPAT} 2019/12/24 (rvsadm {own} for rvsd, IPVS v1.2.1 compatible)\n")
    } else {
        format!("rvsadm v{own} (ipvsadm v{IPVSADM_COMPAT} compatible, IPVS v1.2.1)\n")
    }
}

/// `-h`.
pub fn usage(program: &str) -> String {
    let p = program;
    let mut s = version(program);
    s.push_str(&format!(
        "Usage:
  {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe engine] [-b sched-flags]
  {p} -D virtual-service
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e virtual-service -r server-address [options]
  {p} -d virtual-service -r server-address
  {p} -L|l [virtual-service] [options]
  {p} -Z [virtual-service]
  {p} --set tcp tcpfin udp
  {p} --start-daemon {{master|backup}} [daemon-options]
  {p} --stop-daemon {{master|backup}}
  {p} -h

"
    ));
    s.push_str(
        "Commands (long or short form):
  --add-service     -A        add a virtual service
  --edit-service    -E        change a virtual service
  --delete-service  -D        remove a virtual service
  --clear           -C        remove every virtual service
  --restore         -R        read rules from standard input (all or nothing)
  --save            -S        write rules to standard output
  --add-server      -a        add a real server to a service
  --edit-server     -e        change a real server
  --delete-server   -d        remove a real server
  --list            -L|-l     show the table
  --zero            -Z        reset counters of one service or of all
  --set tcp tcpfin udp        set connection timeouts (0 keeps a value)
  --start-daemon              start the connection sync daemon
  --stop-daemon               stop the connection sync daemon
  --help            -h        show this text

virtual-service:
  --tcp-service|-t  service-address   host[:port]
  --udp-service|-u  service-address   host[:port]
  --sctp-service    service-address   host[:port]
  --fwmark-service|-f fwmark          a mark greater than zero

Options:
  --ipv6         -6                   the fwmark service is IPv6
  --scheduler    -s scheduler         rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos (default wlc)
  --pe            engine              persistence engine (sip), none by default
  --persistent   -p [timeout]         persistent service (default 360 seconds)
  --netmask      -M netmask           client grouping of persistence
  --real-server  -r server-address    host[:port]
  --gatewaying   -g                   direct routing (default)
  --ipip         -i                   tunnelling
  --masquerading -m                   NAT
  --tun-type      type                ipip (default), gue or gre
  --tun-port      port                GUE destination port
  --tun-nocsum                        tunnel without checksum
  --tun-csum                          tunnel with checksum
  --tun-remcsum                       tunnel with remote checksum
  --weight       -w weight            real server capacity 0..65535 (default 1)
  --u-threshold  -x uthreshold        connection limit (0 = none)
  --l-threshold  -y lthreshold        connections to fall below before use resumes
  --connection   -c                   list connections
  --timeout                           list timeouts (tcp tcpfin udp)
  --daemon                            list sync daemons
  --stats                             list counters
  --rate                              list rates
  --exact        -X                   full numbers
  --thresholds                        list thresholds
  --persistent-conn                   list persistent connections
  --tun-info                          list tunnel settings
  --nosort                            keep the daemon's order
  --sort                              sorted order (the default)
  --ops          -o                   one-packet scheduling (UDP)
  --numeric      -n                   no name lookups
  --sched-flags  -b flags             comma-separated scheduler flags
  --json                              listings as JSON (rvsadm)
  --socket       path                 rvsd admin socket (rvsadm; env RVSADM_SOCKET)
Daemon Options:
  --syncid sid                        sync id (default 0 = all)
  --sync-maxlen length                largest sync message (default 1472)
  --mcast-interface interface         sync interface (default eth0)
  --mcast-group address               IPv4/IPv6 group (default 224.0.0.81)
  --mcast-port port                   UDP port (default 8848)
  --mcast-ttl ttl                     multicast TTL (default 1)
",
    );
    s
}
