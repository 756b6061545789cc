//! nfnetlink_queue messages as bytes: the requests rvs sends (queue configuration, verdicts)
//! and what the kernel sends back (queued packets, acknowledgements and errors).
//!
//! Layout (`<linux/netlink.h>`, `<linux/netfilter/nfnetlink.h>`,
//! `<linux/netfilter/nfnetlink_queue.h>`, all stable ABI): a 16-byte netlink header (length,
//! type, flags, sequence, port id, in host byte order), a 4-byte `nfgenmsg` (family, version,
//! queue number in network order), then attributes (2-byte length, 2-byte type, payload
//! padded to 4 bytes). Attribute payloads of nfnetlink_queue are in network order.
//!
//! Pure functions over byte slices: every length and offset read from a message is checked,
//! a malformed message is reported (with its packet id when that much could be read), never
//! followed out of bounds.

/// `NETLINK_NETFILTER`: the netlink protocol of nfnetlink.
pub const NETLINK_NETFILTER: i32 = 12;
/// Verdict: drop the packet.
pub const NF_DROP: u32 = 0;
/// Verdict: let the packet continue through the kernel.
pub const NF_ACCEPT: u32 = 1;
/// `AF_INET`, as nfnetlink carries families (one byte).
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;

const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
const NLA_HDRLEN: usize = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// nfnetlink subsystem of the queue (`NFNL_SUBSYS_QUEUE`), the high byte of message types.
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = NFNL_SUBSYS_QUEUE << 8;
const NFQNL_MSG_VERDICT: u16 = NFNL_SUBSYS_QUEUE << 8 | 1;
const NFQNL_MSG_CONFIG: u16 = NFNL_SUBSYS_QUEUE << 8 | 2;
const NFQNL_MSG_VERDICT_BATCH: u16 = NFNL_SUBSYS_QUEUE << 8 | 3;
/// `NFNETLINK_V0`.
const NFNETLINK_V0: u8 = 0;
const AF_UNSPEC: u8 = 0;

// Attributes of a queued packet (enum nfqnl_attr_type).
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_MARK: u16 = 3;
const NFQA_IFINDEX_INDEV: u16 = 5;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CAP_LEN: u16 = 13;
// Attributes of a configuration message (enum nfqnl_attr_config).
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
// Configuration commands (enum nfqnl_msg_config_cmds).
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_CFG_CMD_PF_BIND: u8 = 3;
/// Copy mode: the whole packet (up to the copy range).
const NFQNL_COPY_PACKET: u8 = 2;
/// Attribute type bits that are flags (nested, network byte order), not the type.
const NLA_TYPE_MASK: u16 = 0x3fff;

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Appends one netlink request to a buffer: header, `nfgenmsg`, attributes; the length is
/// patched in by [`RequestWriter::finish`].
struct RequestWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> RequestWriter<'a> {
    fn begin(out: &'a mut Vec<u8>, msg_type: u16, flags: u16, seq: u32, family: u8, queue: u16) -> Self {
        let start = out.len();
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&msg_type.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        // Port id 0: the kernel.
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&[family, NFNETLINK_V0]);
        out.extend_from_slice(&queue.to_be_bytes());
        RequestWriter { out, start }
    }

    fn attr(self, attr_type: u16, payload: &[u8]) -> Self {
        let len = NLA_HDRLEN + payload.len();
        // Attribute payloads here are at most a few bytes.
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.out.extend_from_slice(&len16.to_ne_bytes());
        self.out.extend_from_slice(&attr_type.to_ne_bytes());
        self.out.extend_from_slice(payload);
        self.out.resize(self.out.len() + (align4(len) - len), 0);
        self
    }

    fn finish(self) {
        let len = u32::try_from(self.out.len() - self.start).unwrap_or(u32::MAX);
        if let Some(field) = self.out.get_mut(self.start..self.start + 4) {
            field.copy_from_slice(&len.to_ne_bytes());
        }
    }
}

/// `struct nfqnl_msg_config_cmd`: command, pad, protocol family (network order).
fn config_cmd(command: u8, pf: u16) -> [u8; 4] {
    let pf = pf.to_be_bytes();
    [command, 0, pf[0], pf[1]]
}

/// Appends the obsolete per-family bind (`NFQNL_CFG_CMD_PF_BIND`) for `pf`, acknowledged.
/// Kernels since 3.8 accept it as a no-op; older ones need it before packets of that family
/// are queued.
pub fn pf_bind(out: &mut Vec<u8>, seq: u32, pf: u8) {
    RequestWriter::begin(out, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, AF_UNSPEC, 0)
        .attr(NFQA_CFG_CMD, &config_cmd(NFQNL_CFG_CMD_PF_BIND, u16::from(pf)))
        .finish();
}

/// Appends the request binding queue `queue` to this socket, in copy-packet mode with up to
/// `copy_range` bytes of each packet, with room for `max_len` queued packets (kernel default
/// if `None`), acknowledged.
pub fn bind_queue(out: &mut Vec<u8>, seq: u32, queue: u16, copy_range: u32, max_len: Option<u32>) {
    // struct nfqnl_msg_config_params is packed: copy_range (be32), copy_mode (u8).
    let mut params = [0u8; 5];
    params[..4].copy_from_slice(&copy_range.to_be_bytes());
    params[4] = NFQNL_COPY_PACKET;
    let writer = RequestWriter::begin(out, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, AF_UNSPEC, queue)
        .attr(NFQA_CFG_CMD, &config_cmd(NFQNL_CFG_CMD_BIND, 0))
        .attr(NFQA_CFG_PARAMS, &params);
    match max_len {
        Some(n) => writer.attr(NFQA_CFG_QUEUE_MAXLEN, &n.to_be_bytes()).finish(),
        None => writer.finish(),
    }
}

/// `struct nfqnl_msg_verdict_hdr`: verdict, packet id, both network order.
fn verdict_hdr(verdict: u32, id: u32) -> [u8; 8] {
    let mut hdr = [0u8; 8];
    hdr[..4].copy_from_slice(&verdict.to_be_bytes());
    hdr[4..].copy_from_slice(&id.to_be_bytes());
    hdr
}

/// Appends the verdict for packet `id` of `queue` (no acknowledgement asked; the kernel
/// still reports an error).
pub fn verdict(out: &mut Vec<u8>, seq: u32, queue: u16, id: u32, verdict: u32) {
    RequestWriter::begin(out, NFQNL_MSG_VERDICT, NLM_F_REQUEST, seq, AF_UNSPEC, queue)
        .attr(NFQA_VERDICT_HDR, &verdict_hdr(verdict, id))
        .finish();
}

/// Appends one verdict for every packet of `queue` still waiting with an id up to `max_id`
/// (`NFQNL_MSG_VERDICT_BATCH`).
pub fn verdict_batch(out: &mut Vec<u8>, seq: u32, queue: u16, max_id: u32, verdict: u32) {
    RequestWriter::begin(out, NFQNL_MSG_VERDICT_BATCH, NLM_F_REQUEST, seq, AF_UNSPEC, queue)
        .attr(NFQA_VERDICT_HDR, &verdict_hdr(verdict, max_id))
        .finish();
}

/// A packet the kernel queued (`NFQNL_MSG_PACKET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedPacket<'a> {
    /// Queue number.
    pub queue: u16,
    /// Protocol family of the hook (`AF_INET`, `AF_INET6`).
    pub family: u8,
    /// The id a verdict names.
    pub id: u32,
    /// `skb->protocol`, the EtherType the packet arrived with (0x0800, 0x86dd).
    pub hw_protocol: u16,
    /// Netfilter hook number (0 = prerouting).
    pub hook: u8,
    /// Firewall mark (0 if the attribute is absent).
    pub mark: u32,
    /// Input interface (0 if absent).
    pub indev: u32,
    /// The packet from its IP header on, as copied (absent in metadata-only mode).
    pub payload: Option<&'a [u8]>,
    /// The packet's real length when the copy was cut short (`NFQA_CAP_LEN`).
    pub cap_len: Option<u32>,
}

/// One message read from the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A queued packet.
    Packet(QueuedPacket<'a>),
    /// `NLMSG_ERROR`: an acknowledgement (`error` 0) or an error (`-errno`) for request `seq`.
    Ack {
        /// Sequence number of the request.
        seq: u32,
        /// 0 or a negative errno.
        error: i32,
    },
    /// `NLMSG_OVERRUN`: the kernel lost messages.
    Overrun,
    /// Anything else (`NLMSG_NOOP`, `NLMSG_DONE`, other nfnetlink messages): ignored.
    Other,
}

/// A message that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The netlink header is cut short or its length is impossible; the rest of the
    /// datagram cannot be delimited.
    #[error("netlink header: {0}")]
    Header(&'static str),
    /// The message is delimited but its body is malformed; `packet_id` is known if the
    /// packet header could be read (so the packet can still get a verdict).
    #[error("nfqueue message: {what}")]
    Body {
        /// What is wrong.
        what: &'static str,
        /// The packet's id, if read.
        packet_id: Option<u32>,
        /// Its queue, if read.
        queue: Option<u16>,
    },
}

fn read_ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn read_ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn read_be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Reads the message at the start of `buf`. Returns it and how many bytes it takes up
/// (with padding; the whole rest of `buf` after a header error, which cannot be stepped
/// over), or `None` if `buf` is empty.
pub fn next_message(buf: &[u8]) -> Option<(Result<Message<'_>, MessageError>, usize)> {
    if buf.is_empty() {
        return None;
    }
    let header_error = |what| Some((Err(MessageError::Header(what)), buf.len()));
    let (Some(len), Some(msg_type), Some(seq)) = (read_ne_u32(buf, 0), read_ne_u16(buf, 4), read_ne_u32(buf, 8)) else {
        return header_error("shorter than a netlink header");
    };
    let Ok(len) = usize::try_from(len) else { return header_error("length overflows") };
    if len < NLMSG_HDRLEN {
        return header_error("length below the header size");
    }
    let Some(message) = buf.get(..len) else { return header_error("length beyond the datagram") };
    let consumed = align4(len).min(buf.len());
    let body = message.get(NLMSG_HDRLEN..).unwrap_or_default();
    let parsed = match msg_type {
        NFQNL_MSG_PACKET => parse_packet(body).map(Message::Packet),
        NLMSG_ERROR => match body.get(..4).and_then(|b| b.try_into().ok()) {
            Some(code) => Ok(Message::Ack { seq, error: i32::from_ne_bytes(code) }),
            None => Err(MessageError::Body { what: "error message without a code", packet_id: None, queue: None }),
        },
        NLMSG_OVERRUN => Ok(Message::Overrun),
        NLMSG_NOOP | NLMSG_DONE => Ok(Message::Other),
        _ => Ok(Message::Other),
    };
    Some((parsed, consumed))
}

/// The body of `NFQNL_MSG_PACKET`: `nfgenmsg`, then attributes.
fn parse_packet(body: &[u8]) -> Result<QueuedPacket<'_>, MessageError> {
    let malformed = |what, packet_id, queue| MessageError::Body { what, packet_id, queue };
    let (Some(&family), Some(queue)) = (body.first(), body.get(2..4)) else {
        return Err(malformed("shorter than nfgenmsg", None, None));
    };
    let queue = u16::from_be_bytes([queue[0], queue[1]]);
    let mut packet =
        QueuedPacket { queue, family, id: 0, hw_protocol: 0, hook: 0, mark: 0, indev: 0, payload: None, cap_len: None };
    let mut have_header = false;
    let mut rest = body.get(NFGENMSG_LEN..).unwrap_or_default();
    while !rest.is_empty() {
        let id = have_header.then_some(packet.id);
        let (Some(attr_len), Some(attr_type)) = (read_ne_u16(rest, 0), read_ne_u16(rest, 2)) else {
            return Err(malformed("attribute header cut short", id, Some(queue)));
        };
        let attr_len = usize::from(attr_len);
        if attr_len < NLA_HDRLEN {
            return Err(malformed("attribute length below its header", id, Some(queue)));
        }
        let Some(payload) = rest.get(NLA_HDRLEN..attr_len) else {
            return Err(malformed("attribute beyond the message", id, Some(queue)));
        };
        match attr_type & NLA_TYPE_MASK {
            NFQA_PACKET_HDR => {
                // struct nfqnl_msg_packet_hdr (packed): packet_id be32, hw_protocol be16, hook u8.
                let (Some(pid), Some(proto), Some(&hook)) =
                    (read_be_u32(payload, 0), payload.get(4..6), payload.get(6))
                else {
                    return Err(malformed("packet header cut short", None, Some(queue)));
                };
                packet.id = pid;
                packet.hw_protocol = u16::from_be_bytes([proto[0], proto[1]]);
                packet.hook = hook;
                have_header = true;
            }
            NFQA_MARK => {
                packet.mark = read_be_u32(payload, 0).ok_or_else(|| malformed("mark cut short", id, Some(queue)))?;
            }
            NFQA_IFINDEX_INDEV => {
                packet.indev =
                    read_be_u32(payload, 0).ok_or_else(|| malformed("input interface cut short", id, Some(queue)))?;
            }
            NFQA_CAP_LEN => {
                packet.cap_len = Some(
                    read_be_u32(payload, 0).ok_or_else(|| malformed("capture length cut short", id, Some(queue)))?,
                );
            }
            NFQA_PAYLOAD => packet.payload = Some(payload),
            _ => {}
        }
        rest = rest.get(align4(attr_len)..).unwrap_or_default();
    }
    if !have_header {
        return Err(malformed("no packet header", None, Some(queue)));
    }
    Ok(packet)
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    //! Golden bytes written by hand from the header layouts in the module comment, on a
    //! little-endian host (netlink headers and attribute headers in host order, attribute
    //! payloads and the queue number in network order).
    use super::*;

    #[test]
    fn verdict_for_one_packet() {
        let mut out = Vec::new();
        verdict(&mut out, 5, 7, 0x0102_0304, NF_DROP);
        #[rustfmt::skip]
        let expected = [
            32, 0, 0, 0,        // length: 16 header + 4 nfgenmsg + 12 attribute
            0x01, 0x03,         // type: subsystem 3 (queue) << 8 | 1 (verdict)
            0x01, 0x00,         // flags: NLM_F_REQUEST
            5, 0, 0, 0,         // sequence
            0, 0, 0, 0,         // port id 0: the kernel
            0, 0, 0, 7,         // nfgenmsg: AF_UNSPEC, version 0, queue 7 (big-endian)
            12, 0, 2, 0,        // attribute NFQA_VERDICT_HDR (2), 4 + 8 bytes
            0, 0, 0, 0,         // verdict NF_DROP (big-endian)
            1, 2, 3, 4,         // packet id (big-endian)
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn verdict_batch_names_the_highest_id() {
        let mut out = Vec::new();
        verdict_batch(&mut out, 1, 0x0102, 9, NF_ACCEPT);
        #[rustfmt::skip]
        let expected = [
            32, 0, 0, 0,
            0x03, 0x03,         // subsystem 3, message 3 (verdict batch)
            0x01, 0x00,
            1, 0, 0, 0,
            0, 0, 0, 0,
            0, 0, 1, 2,         // queue 0x0102
            12, 0, 2, 0,
            0, 0, 0, 1,         // NF_ACCEPT
            0, 0, 0, 9,         // every packet up to id 9
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn bind_request_with_copy_mode_and_queue_length() {
        let mut out = Vec::new();
        bind_queue(&mut out, 3, 42, 9202, Some(4096));
        #[rustfmt::skip]
        let expected = [
            48, 0, 0, 0,        // 16 + 4 + 8 (cmd) + 12 (params, 9 padded) + 8 (maxlen)
            0x02, 0x03,         // subsystem 3, message 2 (config)
            0x05, 0x00,         // NLM_F_REQUEST | NLM_F_ACK
            3, 0, 0, 0,
            0, 0, 0, 0,
            0, 0, 0, 42,        // queue 42
            8, 0, 1, 0,         // NFQA_CFG_CMD
            1, 0, 0, 0,         // command BIND, pad, pf 0
            9, 0, 2, 0,         // NFQA_CFG_PARAMS, 4 + 5 bytes
            0, 0, 0x23, 0xf2,   // copy range 9202 = 0x23f2 (big-endian)
            2, 0, 0, 0,         // copy mode PACKET, then 3 bytes of padding
            8, 0, 3, 0,         // NFQA_CFG_QUEUE_MAXLEN
            0, 0, 0x10, 0,      // 4096 (big-endian)
        ];
        assert_eq!(out, expected);
        let mut out = Vec::new();
        pf_bind(&mut out, 4, AF_INET6);
        #[rustfmt::skip]
        let expected = [
            28, 0, 0, 0, 0x02, 0x03, 0x05, 0x00, 4, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0,         // no queue: a per-family command
            8, 0, 1, 0,
            3, 0, 0, 10,        // command PF_BIND, pad, pf AF_INET6 = 10 (big-endian)
        ];
        assert_eq!(out, expected);
    }

    /// A queued IPv4 packet: id 42, EtherType 0x0800, prerouting, mark 1, from ifindex 4,
    /// a 20-byte payload.
    #[rustfmt::skip]
    fn packet_message() -> Vec<u8> {
        let mut m = vec![
            72, 0, 0, 0,        // 16 + 4 + 12 + 8 + 8 + 24
            0x00, 0x03,         // subsystem 3, message 0 (packet)
            0, 0,               // no flags
            0, 0, 0, 0,         // sequence 0
            0, 0, 0, 0,         // from the kernel
            2, 0, 0, 7,         // AF_INET, version 0, queue 7
            11, 0, 1, 0,        // NFQA_PACKET_HDR, 4 + 7 bytes
            0, 0, 0, 42,        // packet id
            0x08, 0x00,         // hw_protocol
            0,                  // hook: prerouting
            0,                  // padding
            8, 0, 3, 0, 0, 0, 0, 1,     // NFQA_MARK 1
            8, 0, 5, 0, 0, 0, 0, 4,     // NFQA_IFINDEX_INDEV 4
            24, 0, 10, 0,       // NFQA_PAYLOAD, 20 bytes
        ];
        m.extend([0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 10, 198, 18, 1, 100]);
        m
    }

    #[test]
    fn queued_packet_is_read() {
        let m = packet_message();
        let (parsed, used) = next_message(&m).unwrap();
        assert_eq!(used, 72);
        let Ok(Message::Packet(p)) = parsed else { panic!("{parsed:?}") };
        assert_eq!((p.queue, p.family, p.id, p.hw_protocol, p.hook), (7, AF_INET, 42, 0x0800, 0));
        assert_eq!((p.mark, p.indev, p.cap_len), (1, 4, None));
        assert_eq!(p.payload, Some(&m[52..]));
    }

    #[test]
    fn flag_bits_of_an_attribute_type_are_ignored() {
        let mut m = packet_message();
        // NFQA_MARK with NLA_F_NET_BYTEORDER (0x4000) set.
        m[34..36].copy_from_slice(&(0x4000u16 | 3).to_ne_bytes());
        let Some((Ok(Message::Packet(p)), _)) = next_message(&m) else { panic!() };
        assert_eq!(p.mark, 1);
    }

    #[test]
    fn acknowledgements_and_errors() {
        #[rustfmt::skip]
        let ack = [
            36, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,   // NLMSG_ERROR, seq 9
            0, 0, 0, 0,                                       // error 0: acknowledgement
            32, 0, 0, 0, 0x02, 0x03, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0, // the request's header
        ];
        assert_eq!(next_message(&ack), Some((Ok(Message::Ack { seq: 9, error: 0 }), 36)));
        let mut busy = ack;
        busy[16..20].copy_from_slice(&(-16i32).to_ne_bytes()); // -EBUSY
        assert_eq!(next_message(&busy).unwrap().0, Ok(Message::Ack { seq: 9, error: -16 }));
        let overrun = [16, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(next_message(&overrun).unwrap().0, Ok(Message::Overrun));
    }

    #[test]
    fn two_messages_in_one_datagram_are_stepped_through() {
        let mut d = packet_message();
        let mut second = packet_message();
        second[27] = 43; // packet id 43
        d.extend(&second);
        let (first, used) = next_message(&d).unwrap();
        assert!(matches!(first, Ok(Message::Packet(QueuedPacket { id: 42, .. }))));
        let (next, _) = next_message(&d[used..]).unwrap();
        assert!(matches!(next, Ok(Message::Packet(QueuedPacket { id: 43, .. }))));
        assert_eq!(next_message(&[]), None);
    }

    #[test]
    fn malformed_messages_are_reported_with_what_is_known() {
        // A header cut short, and lengths below the header or beyond the datagram: the
        // whole rest is consumed.
        let m = packet_message();
        assert!(matches!(next_message(&m[..10]), Some((Err(MessageError::Header(_)), 10))));
        let mut short = m.clone();
        short[0] = 8;
        assert!(matches!(next_message(&short), Some((Err(MessageError::Header(_)), 72))));
        let mut long = m.clone();
        long[0] = 200;
        assert!(matches!(next_message(&long), Some((Err(MessageError::Header(_)), 72))));
        // The payload attribute claims more than the message holds: the id is still known.
        let mut bad_payload = m.clone();
        bad_payload[48] = 200;
        let (parsed, used) = next_message(&bad_payload).unwrap();
        assert_eq!(used, 72);
        assert!(matches!(parsed, Err(MessageError::Body { packet_id: Some(42), queue: Some(7), .. })));
        // An attribute length of 0 would loop forever if followed: refused.
        let mut zero = m.clone();
        zero[32] = 0;
        assert!(matches!(next_message(&zero).unwrap().0, Err(MessageError::Body { packet_id: Some(42), .. })));
        // No packet header at all: no id to answer.
        let mut no_header = m.clone();
        no_header[22] = 99; // the packet header becomes an unknown attribute
        assert!(matches!(next_message(&no_header).unwrap().0, Err(MessageError::Body { packet_id: None, .. })));
        // A packet header shorter than 7 bytes.
        let mut cut = m;
        cut[20] = 8;
        assert!(matches!(next_message(&cut).unwrap().0, Err(MessageError::Body { packet_id: None, .. })));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_always_advance() {
        // A deterministic spread of byte patterns (xorshift), each walked to the end.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..2000 {
            let len = round % 97;
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if len >= 6 && round % 3 == 0 {
                // Make the length and type plausible so the packet parser runs too.
                buf[..4].copy_from_slice(&(len as u32).to_ne_bytes());
                buf[4..6].copy_from_slice(&NFQNL_MSG_PACKET.to_ne_bytes());
            }
            let mut rest = &buf[..];
            let mut steps = 0;
            while let Some((_, used)) = next_message(rest) {
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
                steps += 1;
                assert!(steps <= len);
            }
        }
    }
}
