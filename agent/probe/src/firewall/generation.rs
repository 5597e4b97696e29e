//! The nf_tables ruleset generation id, read over netlink
//! (`NETLINK_NETFILTER`, one `NFT_MSG_GETGEN` request).
//!
//! The kernel bumps the generation with every committed ruleset change in a
//! network namespace, so an unchanged generation means `nft -j list ruleset`
//! would print the same tables, chains and rules. Asking costs one small
//! datagram each way instead of starting a program.
//!
//! Every byte of the answer is treated as hostile: each length is checked
//! before it is used, and an answer that does not carry the id is an error.

use std::io;
use std::os::fd::OwnedFd;

use crate::netlink::{u16_at, u32_at};

/// `NFNL_SUBSYS_NFTABLES` (from `linux/netfilter/nfnetlink.h`).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFT_MSG_NEWGEN` and `NFT_MSG_GETGEN` (from `linux/netfilter/nf_tables.h`).
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
/// `NFTA_GEN_ID`: the generation, a big-endian u32.
const NFTA_GEN_ID: u16 = 1;
/// The attribute type bits; the top two are the nested and byte-order flags.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// Netlink control message types (from `linux/netlink.h`).
const NLMSG_ERROR: u16 = 2;
/// A request.
const NLM_F_REQUEST: u16 = 0x1;
/// `struct nlmsghdr`: length, type, flags, sequence number, port id.
const NLMSG_HDR_LEN: usize = 16;
/// `struct nfgenmsg`: family, version, resource id.
const NFGENMSG_LEN: usize = 4;
/// `struct nlattr`: length, type.
const NLA_HDR_LEN: usize = 4;
/// The sequence number of our only request.
const SEQ: u32 = 1;
/// The answer is a few dozen bytes; this leaves room and still detects a
/// truncated datagram.
const RECV_BUFFER_BYTES: usize = 8 * 1024;
/// How long the kernel may take to answer.
const RECV_TIMEOUT_MS: libc::suseconds_t = 1_000;
/// How many datagrams from other senders (or for other requests) are
/// skipped before giving up.
const MAX_DATAGRAMS: usize = 16;

/// Errors of reading the generation id.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("cannot open a netfilter netlink socket: {0}")]
    Open(io::Error),
    #[error("cannot set a receive timeout on the netfilter socket: {0}")]
    Timeout(io::Error),
    #[error("cannot send the nf_tables generation request: {0}")]
    Send(io::Error),
    #[error("cannot receive the nf_tables generation: {0}")]
    Receive(io::Error),
    #[error("the kernel refused the nf_tables generation request: {0}")]
    Refused(io::Error),
    #[error("the nf_tables generation answer is malformed: {0}")]
    Malformed(String),
}

/// The current nf_tables generation id of this thread's network namespace.
pub fn ruleset_generation() -> Result<u32, GenerationError> {
    let fd = open()?;
    send(&fd)?;
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    for _ in 0..MAX_DATAGRAMS {
        let len = receive(&fd, &mut buf)?;
        let datagram = buf
            .get(..len)
            .ok_or_else(|| GenerationError::Malformed("longer than the buffer".to_string()))?;
        if let Some(id) = parse_answer(datagram, SEQ)? {
            return Ok(id);
        }
    }
    Err(GenerationError::Malformed(format!(
        "no answer among {MAX_DATAGRAMS} datagrams"
    )))
}

fn open() -> Result<OwnedFd, GenerationError> {
    crate::netlink::open(libc::NETLINK_NETFILTER, RECV_TIMEOUT_MS).map_err(|e| match e {
        crate::netlink::NetlinkError::Open(e) => GenerationError::Open(e),
        crate::netlink::NetlinkError::Timeout(e) => GenerationError::Timeout(e),
    })
}

/// The request bytes: a netlink header and an `nfgenmsg` for no family.
fn request(seq: u32) -> [u8; NLMSG_HDR_LEN + NFGENMSG_LEN] {
    let mut req = [0u8; NLMSG_HDR_LEN + NFGENMSG_LEN];
    let len = (NLMSG_HDR_LEN + NFGENMSG_LEN) as u32;
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&kind.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // The port id stays 0 (the kernel fills in ours); the nfgenmsg is
    // AF_UNSPEC, NFNETLINK_V0 and resource id 0: all zero bytes.
    req
}

fn send(fd: &OwnedFd) -> Result<(), GenerationError> {
    crate::netlink::send(fd, &request(SEQ)).map_err(GenerationError::Send)
}

/// Receives one datagram from the kernel and returns its length.
fn receive(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, GenerationError> {
    let got = crate::netlink::receive(fd, buf).map_err(GenerationError::Receive)?;
    if got > buf.len() {
        return Err(GenerationError::Malformed(format!(
            "a datagram of {got} bytes was truncated"
        )));
    }
    Ok(got)
}

/// Rounds up to the netlink alignment of 4 bytes.
fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// Parses one datagram: the generation id when it holds the answer to
/// request `seq`, None when it holds only messages for something else.
pub(crate) fn parse_answer(datagram: &[u8], seq: u32) -> Result<Option<u32>, GenerationError> {
    let malformed = |why: &str| GenerationError::Malformed(why.to_string());
    let mut at = 0usize;
    while at < datagram.len() {
        let rest = &datagram[at..];
        let len = u32_at(rest, 0).ok_or_else(|| malformed("a short message header"))? as usize;
        let kind = u16_at(rest, 4).ok_or_else(|| malformed("a short message header"))?;
        let msg_seq = u32_at(rest, 8).ok_or_else(|| malformed("a short message header"))?;
        if len < NLMSG_HDR_LEN || len > rest.len() {
            return Err(malformed("a message length outside its datagram"));
        }
        let message = &rest[..len];
        if msg_seq == seq {
            let body = &message[NLMSG_HDR_LEN..];
            if kind == NLMSG_ERROR {
                let code = u32_at(body, 0).ok_or_else(|| malformed("a short error message"))?;
                let errno = (code as i32).checked_neg().unwrap_or(0);
                return Err(GenerationError::Refused(io::Error::from_raw_os_error(
                    errno,
                )));
            }
            if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN {
                return gen_id(body).map(Some);
            }
        }
        at = at
            .checked_add(align4(len).ok_or_else(|| malformed("a message length overflows"))?)
            .ok_or_else(|| malformed("a message length overflows"))?;
    }
    Ok(None)
}

/// The `NFTA_GEN_ID` attribute of a `NFT_MSG_NEWGEN` body.
fn gen_id(body: &[u8]) -> Result<u32, GenerationError> {
    let malformed = |why: &str| GenerationError::Malformed(why.to_string());
    let mut attrs = body
        .get(NFGENMSG_LEN..)
        .ok_or_else(|| malformed("no nfgenmsg header"))?;
    while !attrs.is_empty() {
        let len = u16_at(attrs, 0).ok_or_else(|| malformed("a short attribute header"))? as usize;
        let kind = u16_at(attrs, 2).ok_or_else(|| malformed("a short attribute header"))?;
        if len < NLA_HDR_LEN || len > attrs.len() {
            return Err(malformed("an attribute length outside its message"));
        }
        if kind & NLA_TYPE_MASK == NFTA_GEN_ID {
            let value: [u8; 4] = attrs[NLA_HDR_LEN..len]
                .try_into()
                .map_err(|_| malformed("NFTA_GEN_ID is not 4 bytes"))?;
            return Ok(u32::from_be_bytes(value));
        }
        let next = align4(len).ok_or_else(|| malformed("an attribute length overflows"))?;
        attrs = attrs.get(next..).unwrap_or_default();
    }
    Err(malformed("no NFTA_GEN_ID attribute"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NEWGEN answer with the given id, a pid attribute before it and a
    /// process name (unaligned length) after it.
    fn answer(seq: u32, id: u32) -> Vec<u8> {
        let mut body = vec![0u8, 0, 0, 5];
        // NFTA_GEN_PROC_PID (2), 4 bytes.
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&2u16.to_ne_bytes());
        body.extend_from_slice(&77u32.to_be_bytes());
        // NFTA_GEN_ID (1), 4 bytes, big-endian.
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&1u16.to_ne_bytes());
        body.extend_from_slice(&id.to_be_bytes());
        // NFTA_GEN_PROC_NAME (3), "nft\0" plus padding.
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&3u16.to_ne_bytes());
        body.extend_from_slice(b"nft\0");
        let mut msg = Vec::new();
        let len = (NLMSG_HDR_LEN + body.len()) as u32;
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn the_id_is_read_big_endian_among_other_attributes() {
        assert_eq!(
            parse_answer(&answer(1, 0x0102_0304), 1).unwrap(),
            Some(0x0102_0304)
        );
        // An answer to another request is not ours.
        assert_eq!(parse_answer(&answer(9, 5), 1).unwrap(), None);
    }

    #[test]
    fn errors_and_truncations_are_reported_not_read() {
        let mut error = Vec::new();
        error.extend_from_slice(&36u32.to_ne_bytes());
        error.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error.extend_from_slice(&0u16.to_ne_bytes());
        error.extend_from_slice(&1u32.to_ne_bytes());
        error.extend_from_slice(&0u32.to_ne_bytes());
        error.extend_from_slice(&(-libc::EPERM).to_ne_bytes());
        error.extend_from_slice(&[0u8; 16]);
        match parse_answer(&error, 1) {
            Err(GenerationError::Refused(e)) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let whole = answer(1, 7);
        // Every truncation is an error or "not ours", never a wrong id.
        for cut in 0..whole.len() {
            assert!(!matches!(parse_answer(&whole[..cut], 1), Ok(Some(_))));
        }
        // A message claiming more than its datagram is malformed.
        let mut long = whole.clone();
        long[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse_answer(&long, 1).is_err());
        // An id attribute of the wrong size is malformed.
        let mut odd = whole;
        let id_at = NLMSG_HDR_LEN + NFGENMSG_LEN + 8;
        odd[id_at..id_at + 2].copy_from_slice(&6u16.to_ne_bytes());
        assert!(parse_answer(&odd, 1).is_err());
    }
}
