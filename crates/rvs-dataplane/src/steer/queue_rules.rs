//! The rules that hand the marked packets of firewall-mark services to NFQUEUE: tables
//! `ip <name>` and `ip6 <name>`, each with a chain at hook prerouting, priority mangle + 10
//! (after the operator's marking at mangle), and per mark and protocol (TCP, UDP, SCTP):
//!
//! ```text
//! meta mark N meta l4proto P counter xt target NFQUEUE (queue Q, bypass)
//! ```
//!
//! The queueing action is xtables' NFQUEUE target through nf_tables' compatibility layer
//! (`nft_compat`), not nft's own `queue` statement: kernels built without `nft_queue` (as
//! on the machines rvs is tested on) still have it, and stock kernels have both. `nft`
//! cannot write an xtables target from its text syntax, so the rules are installed with
//! nf_tables netlink messages directly, as one transaction (batch) that replaces both tables
//! atomically. `bypass`: while no program listens on the queue, packets go on through the
//! kernel instead of being dropped. `nft list table ip <name>` shows them with their counters
//! (older `nft` versions print no action after the counter: the xtables target is not
//! theirs to print); `nft delete table` removes them.
//!
//! nf_tables accepts the compatibility layer only in the `ip`, `ip6`, `arp` and `bridge`
//! families, hence two tables rather than one `inet` table.

use std::io;
use std::time::{Duration, Instant};

use rvs_core::addr::Family;

use super::{SteerError, SteeredMark};
use crate::nfqueue::sys;

const NETLINK_NETFILTER: libc::c_int = 12;
const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
/// `NFNL_MSG_BATCH_BEGIN` / `_END` (`NLMSG_MIN_TYPE` and the next).
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
/// `NFNL_SUBSYS_NFTABLES`, the high byte of nf_tables message types.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = NFNL_SUBSYS_NFTABLES << 8;
const NFT_MSG_DELTABLE: u16 = NFNL_SUBSYS_NFTABLES << 8 | 2;
const NFT_MSG_NEWCHAIN: u16 = NFNL_SUBSYS_NFTABLES << 8 | 3;
const NFT_MSG_NEWRULE: u16 = NFNL_SUBSYS_NFTABLES << 8 | 6;
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_TARGET_NAME: u16 = 1;
const NFTA_TARGET_REV: u16 = 2;
const NFTA_TARGET_INFO: u16 = 3;
const NFT_META_MARK: u32 = 3;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CMP_EQ: u32 = 0;
/// `NFT_REG_1`, the first 16-byte data register.
const NFT_REG_1: u32 = 1;
/// `NF_INET_PRE_ROUTING`.
const HOOK_PREROUTING: u32 = 0;
/// `NF_IP_PRI_MANGLE` (-150) + 10: after the operator's marking rules at mangle.
pub const PRIORITY: i32 = -140;
/// `NF_ACCEPT`, the chain policy.
const NF_ACCEPT: u32 = 1;
/// Revision 3 of the NFQUEUE target (`struct xt_NFQ_info_v3`).
const NFQUEUE_REVISION: u32 = 3;
/// `NFQ_FLAG_BYPASS`.
const NFQ_FLAG_BYPASS: u16 = 0x1;
/// Name of the chain in each table.
pub const CHAIN: &str = "fwmark";
/// The protocols IPVS balances: a mark on anything else is not queued.
const PROTOCOLS: [u8; 3] = [6, 17, 132];
/// How long to wait for the kernel's answers.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Builds netlink messages with nested attributes into a buffer.
struct Writer {
    out: Vec<u8>,
    seq: u32,
    /// Sequence numbers of messages that asked for an acknowledgement.
    acked: Vec<u32>,
}

impl Writer {
    /// Starts a message; returns where it starts (for [`Writer::end`]).
    fn begin(&mut self, msg_type: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let start = self.out.len();
        self.seq = self.seq.wrapping_add(1);
        if flags & NLM_F_ACK != 0 {
            self.acked.push(self.seq);
        }
        self.out.extend_from_slice(&0u32.to_ne_bytes());
        self.out.extend_from_slice(&msg_type.to_ne_bytes());
        self.out.extend_from_slice(&flags.to_ne_bytes());
        self.out.extend_from_slice(&self.seq.to_ne_bytes());
        self.out.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version 0, resource id (network order).
        self.out.extend_from_slice(&[family, 0]);
        self.out.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    /// Patches the length of the message started at `start`.
    fn end(&mut self, start: usize) {
        let len = u32::try_from(self.out.len() - start).unwrap_or(u32::MAX);
        if let Some(field) = self.out.get_mut(start..start + 4) {
            field.copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn attr(&mut self, attr_type: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.out.extend_from_slice(&attr_type.to_ne_bytes());
        self.out.extend_from_slice(payload);
        self.out.resize(self.out.len() + (align4(len) - len), 0);
    }

    /// A NUL-terminated string attribute.
    fn attr_str(&mut self, attr_type: u16, value: &str) {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.attr(attr_type, &bytes);
    }

    fn attr_be32(&mut self, attr_type: u16, value: u32) {
        self.attr(attr_type, &value.to_be_bytes());
    }

    /// Opens a nested attribute; returns where it starts (for [`Writer::nest_end`]).
    fn nest_begin(&mut self, attr_type: u16) -> usize {
        let start = self.out.len();
        self.out.extend_from_slice(&0u16.to_ne_bytes());
        self.out.extend_from_slice(&(attr_type | NLA_F_NESTED).to_ne_bytes());
        start
    }

    fn nest_end(&mut self, start: usize) {
        let len = u16::try_from(self.out.len() - start).unwrap_or(u16::MAX);
        if let Some(field) = self.out.get_mut(start..start + 2) {
            field.copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// One expression of a rule: its name and its data attributes.
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Writer)) {
        let elem = self.nest_begin(NFTA_LIST_ELEM);
        self.attr_str(NFTA_EXPR_NAME, name);
        let nested = self.nest_begin(NFTA_EXPR_DATA);
        data(self);
        self.nest_end(nested);
        self.nest_end(elem);
    }

    /// `register 1 = meta key; register 1 == value`.
    fn meta_equals(&mut self, key: u32, value: &[u8]) {
        self.expr("meta", |w| {
            w.attr_be32(NFTA_META_DREG, NFT_REG_1);
            w.attr_be32(NFTA_META_KEY, key);
        });
        self.expr("cmp", |w| {
            w.attr_be32(NFTA_CMP_SREG, NFT_REG_1);
            w.attr_be32(NFTA_CMP_OP, NFT_CMP_EQ);
            let data = w.nest_begin(NFTA_CMP_DATA);
            w.attr(NFTA_DATA_VALUE, value);
            w.nest_end(data);
        });
    }
}

fn nfproto(family: Family) -> u8 {
    match family {
        Family::V4 => NFPROTO_IPV4,
        Family::V6 => NFPROTO_IPV6,
    }
}

/// `struct xt_NFQ_info_v3` { queuenum, queues_total, flags } (host order), padded to the
/// 8-byte alignment xtables sizes target data with.
fn nfqueue_info(queue: u16) -> [u8; 8] {
    let mut info = [0u8; 8];
    info[..2].copy_from_slice(&queue.to_ne_bytes());
    info[2..4].copy_from_slice(&1u16.to_ne_bytes());
    info[4..6].copy_from_slice(&NFQ_FLAG_BYPASS.to_ne_bytes());
    info
}

/// The transaction that replaces tables `ip <table>` and `ip6 <table>` with the queue
/// rules for `marks` (both tables are only removed when `marks` is empty): begin, then per
/// family: create (so the delete cannot fail), delete, and, if that family has marks,
/// create again with the chain and rules; end. Returns the bytes and the sequence numbers
/// that will be acknowledged.
fn build(table: &str, marks: &[SteeredMark], queue: u16) -> (Vec<u8>, Vec<u32>) {
    let mut w = Writer { out: Vec::new(), seq: 0, acked: Vec::new() };
    let batch = w.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
    w.end(batch);
    for family in [Family::V4, Family::V6] {
        let proto = nfproto(family);
        let mut family_marks: Vec<u32> = marks.iter().filter(|m| m.family == family).map(|m| m.mark).collect();
        family_marks.sort_unstable();
        family_marks.dedup();
        let m = w.begin(NFT_MSG_NEWTABLE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, proto, 0);
        w.attr_str(NFTA_TABLE_NAME, table);
        w.end(m);
        let m = w.begin(NFT_MSG_DELTABLE, NLM_F_REQUEST | NLM_F_ACK, proto, 0);
        w.attr_str(NFTA_TABLE_NAME, table);
        w.end(m);
        if family_marks.is_empty() {
            continue;
        }
        let m = w.begin(NFT_MSG_NEWTABLE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, proto, 0);
        w.attr_str(NFTA_TABLE_NAME, table);
        w.end(m);
        let m = w.begin(NFT_MSG_NEWCHAIN, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, proto, 0);
        w.attr_str(NFTA_CHAIN_TABLE, table);
        w.attr_str(NFTA_CHAIN_NAME, CHAIN);
        let hook = w.nest_begin(NFTA_CHAIN_HOOK);
        w.attr_be32(NFTA_HOOK_HOOKNUM, HOOK_PREROUTING);
        // The priority is a signed 32-bit value sent in network order.
        w.attr(NFTA_HOOK_PRIORITY, &PRIORITY.to_be_bytes());
        w.nest_end(hook);
        w.attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT);
        w.attr_str(NFTA_CHAIN_TYPE, "filter");
        w.end(m);
        for mark in family_marks {
            for protocol in PROTOCOLS {
                let m = w.begin(NFT_MSG_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, proto, 0);
                w.attr_str(NFTA_RULE_TABLE, table);
                w.attr_str(NFTA_RULE_CHAIN, CHAIN);
                let exprs = w.nest_begin(NFTA_RULE_EXPRESSIONS);
                // The mark register holds skb->mark in host order; l4proto is one byte.
                w.meta_equals(NFT_META_MARK, &mark.to_ne_bytes());
                w.meta_equals(NFT_META_L4PROTO, &[protocol]);
                w.expr("counter", |w| {
                    w.attr(NFTA_COUNTER_BYTES, &0u64.to_be_bytes());
                    w.attr(NFTA_COUNTER_PACKETS, &0u64.to_be_bytes());
                });
                w.expr("target", |w| {
                    w.attr_str(NFTA_TARGET_NAME, "NFQUEUE");
                    w.attr_be32(NFTA_TARGET_REV, NFQUEUE_REVISION);
                    w.attr(NFTA_TARGET_INFO, &nfqueue_info(queue));
                });
                w.nest_end(exprs);
                w.end(m);
            }
        }
    }
    let end = w.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
    w.end(end);
    (w.out, w.acked)
}

/// Replaces the queue rules of tables `ip <table>` / `ip6 <table>` with those for `marks`
/// (removes both tables if `marks` is empty), in one transaction, in the calling thread's
/// network namespace.
pub fn replace(table: &str, marks: &[SteeredMark], queue: u16) -> Result<(), SteerError> {
    let (batch, mut waiting) = build(table, marks, queue);
    let netlink = |what: &str, e: io::Error| SteerError::Netlink(format!("{what}: {e}"));
    let fd = sys::netlink_socket(NETLINK_NETFILTER).map_err(|e| netlink("netlink socket", e))?;
    sys::send(&fd, &batch).map_err(|e| netlink("sending the nf_tables batch", e))?;
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SteerError::Netlink("no answer from nf_tables".to_owned()));
        }
        if !sys::wait_readable(&fd, left).map_err(|e| netlink("waiting for nf_tables", e))? {
            continue;
        }
        let len = match sys::recv_nonblocking(&fd, &mut buf) {
            Ok(len) => len.min(buf.len()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(netlink("reading nf_tables' answer", e)),
        };
        let mut rest = buf.get(..len).unwrap_or_default();
        while let Some((seq, error, used)) = next_ack(rest) {
            rest = rest.get(used..).unwrap_or_default();
            if error != 0 {
                let e = io::Error::from_raw_os_error(-error);
                let hint =
                    if error == -libc::ENOENT { " (the kernel lacks nft_compat or the NFQUEUE target)" } else { "" };
                return Err(SteerError::Netlink(format!("nf_tables refused the queue rules: {e}{hint}")));
            }
            waiting.retain(|s| *s != seq);
        }
    }
    Ok(())
}

/// Reads the message at the start of `buf`: for `NLMSG_ERROR` its sequence number and
/// error code, for any other message sequence 0 and code 0 (ignored by the caller); with
/// the bytes it takes up. `None` at the end or on a malformed header.
fn next_ack(buf: &[u8]) -> Option<(u32, i32, usize)> {
    let word = |at: usize| Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?));
    let len = usize::try_from(word(0)?).ok()?;
    if len < NLMSG_HDRLEN || len > buf.len() {
        return None;
    }
    let msg_type = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
    let used = align4(len).min(buf.len());
    if msg_type != NLMSG_ERROR {
        return Some((0, 0, used));
    }
    let seq = word(8)?;
    let error = i32::from_ne_bytes(buf.get(16..20)?.try_into().ok()?);
    Some((seq, error, used))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    /// Splits a batch into (type, flags, family, seq) of each message.
    fn headers(batch: &[u8]) -> Vec<(u16, u16, u8, u32)> {
        let mut found = Vec::new();
        let mut rest = batch;
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            let t = u16::from_le_bytes(rest[4..6].try_into().unwrap());
            let f = u16::from_le_bytes(rest[6..8].try_into().unwrap());
            let s = u32::from_le_bytes(rest[8..12].try_into().unwrap());
            found.push((t, f, rest[16], s));
            assert_eq!(len % 4, 0, "messages are 4-byte aligned");
            rest = &rest[len..];
        }
        found
    }

    #[test]
    fn no_marks_only_removes_both_tables() {
        let (batch, acked) = build("rvs_7", &[], 5);
        // Begin (0x10, resource id 10 = nf_tables), create + delete per family, end.
        assert_eq!(&batch[..20], &[20, 0, 0, 0, 0x10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10]);
        let kinds: Vec<(u16, u8)> = headers(&batch).iter().map(|h| (h.0, h.2)).collect();
        assert_eq!(
            kinds,
            vec![
                (0x10, 0),
                (0x0a00, 2), // NEWTABLE ip
                (0x0a02, 2), // DELTABLE ip
                (0x0a00, 10),
                (0x0a02, 10),
                (0x11, 0)
            ]
        );
        assert_eq!(acked, vec![2, 3, 4, 5], "every request but begin/end is acknowledged");
    }

    #[test]
    fn a_mark_gets_a_chain_and_one_rule_per_protocol_in_its_family() {
        let marks = [SteeredMark { family: Family::V4, mark: 1 }, SteeredMark { family: Family::V4, mark: 1 }];
        let (batch, _) = build("rvs_7", &marks, 0x0102);
        let kinds: Vec<(u16, u8)> = headers(&batch).iter().map(|h| (h.0, h.2)).collect();
        // ip: create, delete, create, chain, three rules (the duplicate mark counts once);
        // ip6: create, delete only.
        assert_eq!(
            kinds,
            vec![
                (0x10, 0),
                (0x0a00, 2),
                (0x0a02, 2),
                (0x0a00, 2),
                (0x0a03, 2),
                (0x0a06, 2),
                (0x0a06, 2),
                (0x0a06, 2),
                (0x0a00, 10),
                (0x0a02, 10),
                (0x11, 0)
            ]
        );
        let find = |needle: &[u8]| batch.windows(needle.len()).any(|w| w == needle);
        // The hook: prerouting (0), priority -140 = 0xffffff74 in network order.
        assert!(find(&[8, 0, 1, 0, 0, 0, 0, 0, 8, 0, 2, 0, 0xff, 0xff, 0xff, 0x74]));
        // The mark compared in host order; TCP, UDP and SCTP as one-byte values.
        assert!(find(&[8, 0, 1, 0, 1, 0, 0, 0]));
        for proto in [6u8, 17, 132] {
            assert!(find(&[5, 0, 1, 0, proto, 0, 0, 0]), "l4proto {proto}");
        }
        // The target: "NFQUEUE", revision 3, queue 0x0102, one queue, bypass.
        assert!(find(b"NFQUEUE\0"));
        assert!(find(&[8, 0, 2, 0, 0, 0, 0, 3]));
        assert!(find(&[12, 0, 3, 0, 0x02, 0x01, 1, 0, 1, 0, 0, 0]));
    }

    #[test]
    fn answers_are_read_without_trusting_lengths() {
        #[rustfmt::skip]
        let ack = [36u8, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
                   0xfe, 0xff, 0xff, 0xff, // -2: ENOENT
                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(next_ack(&ack), Some((4, -2, 36)));
        let mut bad = ack;
        bad[0] = 200;
        assert_eq!(next_ack(&bad), None);
        bad[0] = 3;
        assert_eq!(next_ack(&bad), None);
        assert_eq!(next_ack(&ack[..10]), None);
    }
}
