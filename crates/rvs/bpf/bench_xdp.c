// XDP programs of `rvs bench` (crates/rvs/src/bench/xdp.rs loads them with raw bpf() calls).
//
// Self-contained on purpose: no kernel or libbpf headers, no maps, no relocations, so the
// loader only has to copy each program's instructions out of the ELF object.
//
// Both programs expect the frames of the packet-rate benchmark: Ethernet, IPv4 without
// options, UDP (the generator builds exactly that template). The drop program is used on the
// director's interface to measure the generator's own ceiling.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

struct xdp_md {
    u32 data;
    u32 data_end;
    u32 data_meta;
    u32 ingress_ifindex;
    u32 rx_queue_index;
    u32 egress_ifindex;
};

enum xdp_action { XDP_ABORTED = 0, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT };

// Helper 7 of the kernel's stable helper numbering: bpf_get_prandom_u32().
static u32 (*get_prandom_u32)(void) = (void *)7;

#define ETH_LEN 14
#define IPV4_LEN 20
#define UDP_LEN 8
#define IPPROTO_IPIP 4
#define IPPROTO_UDP 17

// The generator spreads its frames over this many UDP source ports (flows), from FIRST_PORT.
#define FLOW_PORTS 16384
#define FIRST_PORT 1024

// The UDP destination port of the benchmark traffic (the lab's UDP service, rvs_lab::UDP_PORT).
#define BENCH_PORT 53

// The template's first 48 bytes (Ethernet, IPv4 and UDP headers, 6 bytes of payload) as six
// little-endian 64-bit words. The loader (crates/rvs/src/bench/xdp.rs) finds these placeholder
// constants in the compiled program and replaces them with the real template before loading,
// so the program needs no map.
#define WORD0 0x5256534230000000ULL
#define WORD1 0x5256534231000000ULL
#define WORD2 0x5256534232000000ULL
#define WORD3 0x5256534233000000ULL
#define WORD4 0x5256534234000000ULL
#define WORD5 0x5256534235000000ULL

// Generator: run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES; writes the template headers
// into each frame, gives it a random UDP source port (one of FLOW_PORTS flows) and transmits it
// out of the interface the run names (XDP_TX). The headers are rewritten every time because
// the kernel recycles a frame's page with whatever the receiver left in it (a forwarding
// director rewrites MACs, TTL and checksum in place). The UDP checksum is 0 (none, legal for
// IPv4), so the port needs no checksum update.
__attribute__((section("xdp_gen"), used)) int rvs_bench_gen(struct xdp_md *ctx) {
    u8 *data = (u8 *)(long)ctx->data;
    u8 *end = (u8 *)(long)ctx->data_end;
    if (data + 48 > end)
        return XDP_ABORTED;
    unsigned long long *words = (unsigned long long *)data;
    words[0] = WORD0;
    words[1] = WORD1;
    words[2] = WORD2;
    words[3] = WORD3;
    words[4] = WORD4;
    words[5] = WORD5;
    u32 port = FIRST_PORT + get_prandom_u32() % FLOW_PORTS;
    data[ETH_LEN + IPV4_LEN] = port >> 8;
    data[ETH_LEN + IPV4_LEN + 1] = port & 0xff;
    return XDP_TX;
}

static int is_bench_udp(u8 *ip, u8 *end) {
    if (ip + IPV4_LEN + UDP_LEN > end)
        return 0;
    if (ip[0] != 0x45 || ip[9] != IPPROTO_UDP)
        return 0;
    return ip[IPV4_LEN + 2] == (BENCH_PORT >> 8) && ip[IPV4_LEN + 3] == (BENCH_PORT & 0xff);
}

// Drop: drops the benchmark's UDP frames (plain, or wrapped in an outer IPv4 header by
// LVS-TUN) before the kernel builds a socket buffer for them; passes everything else.
__attribute__((section("xdp_sink"), used)) int rvs_bench_sink(struct xdp_md *ctx) {
    u8 *data = (u8 *)(long)ctx->data;
    u8 *end = (u8 *)(long)ctx->data_end;
    if (data + ETH_LEN + IPV4_LEN > end)
        return XDP_PASS;
    if (data[12] != 0x08 || data[13] != 0x00)
        return XDP_PASS;
    u8 *ip = data + ETH_LEN;
    if (is_bench_udp(ip, end))
        return XDP_DROP;
    if (ip[0] == 0x45 && ip[9] == IPPROTO_IPIP && is_bench_udp(ip + IPV4_LEN, end))
        return XDP_DROP;
    return XDP_PASS;
}
