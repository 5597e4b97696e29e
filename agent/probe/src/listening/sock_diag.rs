//! Listening sockets from the kernel's sock_diag netlink interface
//! (`NETLINK_SOCK_DIAG`, one `SOCK_DIAG_BY_FAMILY` dump per protocol and
//! address family).
//!
//! A dump asks the kernel for sockets in chosen states only. For TCP that is
//! LISTEN alone, so the kernel walks its listening table and never the
//! established-connection table, whose walk is what makes `/proc/net/tcp`
//! slow on machines with much memory (the table is sized from RAM, and an
//! empty bucket costs as much to visit as a full one). For UDP it is CLOSE,
//! the state of a bound socket that is not connected; the port filter that
//! leaves out unbound sockets is the same as the `/proc/net` parser's.
//!
//! Every byte of the answer is treated as hostile: lengths are checked
//! before each read, a message that runs past its datagram is an error, and
//! the number of sockets and datagrams read is bounded.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

use hardend_facts::listening::{Proto, Socket};

use crate::netlink::{u16_at, u32_at};

/// The netlink message type of a sock_diag request and of its answers.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// Netlink control message types (from `linux/netlink.h`).
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// Request flags: a request, and a dump of every matching object.
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x100 | 0x200;

/// `struct nlmsghdr`: length, type, flags, sequence number, port id.
const NLMSG_HDR_LEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, extensions, padding,
/// states, and a 48-byte `struct inet_diag_sockid`.
const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retransmits, the 48-byte
/// socket id, then expires, rqueue, wqueue, uid and inode (4 bytes each).
const INET_DIAG_MSG_LEN: usize = 72;
/// Offsets inside `struct inet_diag_msg`.
const MSG_FAMILY: usize = 0;
const MSG_STATE: usize = 1;
const MSG_SPORT: usize = 4;
const MSG_SRC: usize = 8;
const MSG_INODE: usize = 68;

/// TCP_LISTEN and TCP_CLOSE in the kernel's socket state numbering.
const TCP_LISTEN: u8 = 10;
const TCP_CLOSE: u8 = 7;

/// The kernel never sends a dump datagram larger than 32 KiB; a buffer of
/// twice that leaves room, and a truncated datagram is still detected.
const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// How long one receive may wait for the kernel before the dump is given up
/// (and the caller falls back to `/proc/net`).
const RECV_TIMEOUT_MS: libc::suseconds_t = 2_000;
/// Bounds on one dump, so that an endless answer cannot hold the probe.
const MAX_SOCKETS: usize = 1_000_000;
const MAX_DATAGRAMS: usize = 100_000;

/// Errors of reading the socket tables over netlink.
#[derive(Debug, thiserror::Error)]
pub enum SockDiagError {
    #[error("cannot open a sock_diag netlink socket: {0}")]
    Open(io::Error),
    #[error("cannot set a receive timeout on the sock_diag socket: {0}")]
    Timeout(io::Error),
    #[error("cannot send the {what} dump request: {source}")]
    Send {
        what: &'static str,
        source: io::Error,
    },
    #[error("cannot receive the {what} dump: {source}")]
    Receive {
        what: &'static str,
        source: io::Error,
    },
    #[error("the kernel refused the {what} dump: {source}")]
    Refused {
        what: &'static str,
        source: io::Error,
    },
    #[error("the {what} dump is malformed: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("the {what} dump has more than {MAX_SOCKETS} sockets")]
    TooMany { what: &'static str },
}

/// One dump: a protocol and an address family.
#[derive(Debug, Clone, Copy)]
struct Dump {
    proto: Proto,
    v6: bool,
}

impl Dump {
    fn what(self) -> &'static str {
        match (self.proto, self.v6) {
            (Proto::Tcp, false) => "tcp",
            (Proto::Tcp, true) => "tcp6",
            (Proto::Udp, false) => "udp",
            (Proto::Udp, true) => "udp6",
        }
    }

    fn family(self) -> u8 {
        if self.v6 {
            libc::AF_INET6 as u8
        } else {
            libc::AF_INET as u8
        }
    }

    fn protocol(self) -> u8 {
        match self.proto {
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
        }
    }

    /// The state the kernel is asked for (as a bit mask) and then checked.
    fn state(self) -> u8 {
        match self.proto {
            Proto::Tcp => TCP_LISTEN,
            Proto::Udp => TCP_CLOSE,
        }
    }
}

/// Every listening TCP socket and bound, unconnected UDP socket, IPv4 and
/// IPv6, in the order tcp, tcp6, udp, udp6 (the `/proc/net` order). The
/// sockets have no process yet.
pub fn read_sockets() -> Result<Vec<Socket>, SockDiagError> {
    let fd = open()?;
    let mut buf = vec![0u8; RECV_BUFFER_BYTES];
    let mut sockets = Vec::new();
    let dumps = [
        (Proto::Tcp, false),
        (Proto::Tcp, true),
        (Proto::Udp, false),
        (Proto::Udp, true),
    ];
    for (seq, (proto, v6)) in (1u32..).zip(dumps) {
        let dump = Dump { proto, v6 };
        send_request(&fd, dump, seq)?;
        receive_dump(&fd, dump, seq, &mut buf, &mut sockets)?;
    }
    Ok(sockets)
}

fn open() -> Result<OwnedFd, SockDiagError> {
    crate::netlink::open(libc::NETLINK_SOCK_DIAG, RECV_TIMEOUT_MS).map_err(|e| match e {
        crate::netlink::NetlinkError::Open(e) => SockDiagError::Open(e),
        crate::netlink::NetlinkError::Timeout(e) => SockDiagError::Timeout(e),
    })
}

/// The request bytes: a netlink header followed by `inet_diag_req_v2`.
fn request(dump: Dump, seq: u32) -> [u8; NLMSG_HDR_LEN + INET_DIAG_REQ_V2_LEN] {
    let mut req = [0u8; NLMSG_HDR_LEN + INET_DIAG_REQ_V2_LEN];
    let len = (NLMSG_HDR_LEN + INET_DIAG_REQ_V2_LEN) as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // The port id stays 0: the kernel fills in ours.
    let body = &mut req[NLMSG_HDR_LEN..];
    body[0] = dump.family();
    body[1] = dump.protocol();
    // No extensions, no padding; the socket id stays zero, which filters
    // nothing in a dump.
    let states: u32 = 1 << dump.state();
    body[4..8].copy_from_slice(&states.to_ne_bytes());
    req
}

fn send_request(fd: &OwnedFd, dump: Dump, seq: u32) -> Result<(), SockDiagError> {
    crate::netlink::send(fd, &request(dump, seq)).map_err(|source| SockDiagError::Send {
        what: dump.what(),
        source,
    })
}

/// Receives datagrams until the dump's NLMSG_DONE, appending its sockets.
fn receive_dump(
    fd: &OwnedFd,
    dump: Dump,
    seq: u32,
    buf: &mut [u8],
    sockets: &mut Vec<Socket>,
) -> Result<(), SockDiagError> {
    for _ in 0..MAX_DATAGRAMS {
        let len = receive(fd, dump, buf)?;
        let datagram = buf.get(..len).ok_or_else(|| SockDiagError::Malformed {
            what: dump.what(),
            why: "the datagram is longer than the buffer".to_string(),
        })?;
        if parse_datagram(datagram, dump, seq, sockets)? == Progress::Done {
            return Ok(());
        }
    }
    Err(SockDiagError::Malformed {
        what: dump.what(),
        why: format!("no end after {MAX_DATAGRAMS} datagrams"),
    })
}

/// Receives one datagram of `dump` from the kernel and returns its length.
fn receive(fd: &OwnedFd, dump: Dump, buf: &mut [u8]) -> Result<usize, SockDiagError> {
    let got = crate::netlink::receive(fd, buf).map_err(|source| SockDiagError::Receive {
        what: dump.what(),
        source,
    })?;
    if got > buf.len() {
        return Err(SockDiagError::Malformed {
            what: dump.what(),
            why: format!("a datagram of {got} bytes was truncated"),
        });
    }
    Ok(got)
}

/// Whether a dump is finished after a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    More,
    Done,
}

/// Parses one datagram of a dump: zero or more netlink messages, each
/// aligned to 4 bytes. Messages of another sequence number are skipped.
fn parse_datagram(
    datagram: &[u8],
    dump: Dump,
    seq: u32,
    sockets: &mut Vec<Socket>,
) -> Result<Progress, SockDiagError> {
    let malformed = |why: String| SockDiagError::Malformed {
        what: dump.what(),
        why,
    };
    let mut rest = datagram;
    while !rest.is_empty() {
        let header = rest.get(..NLMSG_HDR_LEN).ok_or_else(|| {
            malformed(format!(
                "{} bytes left, less than a message header",
                rest.len()
            ))
        })?;
        let len = u32_at(header, 0).unwrap_or(0) as usize;
        let kind = u16_at(header, 4).unwrap_or(0);
        let msg_seq = u32_at(header, 8).unwrap_or(0);
        if len < NLMSG_HDR_LEN || len > rest.len() {
            return Err(malformed(format!(
                "a message claims {len} bytes with {} left",
                rest.len()
            )));
        }
        let payload = rest.get(NLMSG_HDR_LEN..len).unwrap_or(&[]);
        if msg_seq == seq {
            match kind {
                NLMSG_DONE => {
                    // A dump that failed part way ends with a negative errno.
                    if let Some(code) = read_i32(payload, 0)
                        && code < 0
                    {
                        return Err(SockDiagError::Refused {
                            what: dump.what(),
                            source: io::Error::from_raw_os_error(code.saturating_neg()),
                        });
                    }
                    return Ok(Progress::Done);
                }
                NLMSG_ERROR => {
                    let code = read_i32(payload, 0)
                        .ok_or_else(|| malformed("an error message without a code".to_string()))?;
                    // Zero would be an acknowledgement, which a dump does
                    // not send; either way the dump is over.
                    return Err(SockDiagError::Refused {
                        what: dump.what(),
                        source: io::Error::from_raw_os_error(code.saturating_neg()),
                    });
                }
                NLMSG_OVERRUN => {
                    return Err(malformed("the kernel reports lost data".to_string()));
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(socket) = parse_diag_msg(payload, dump)? {
                        if sockets.len() >= MAX_SOCKETS {
                            return Err(SockDiagError::TooMany { what: dump.what() });
                        }
                        sockets.push(socket);
                    }
                }
                NLMSG_NOOP => {}
                // Unknown message types carry nothing we read.
                _ => {}
            }
        }
        // The next message starts at the next 4-byte boundary; the last one
        // may end without its padding.
        let next = len.saturating_add(3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    Ok(Progress::More)
}

/// One `inet_diag_msg`: the socket when it is in the wanted state, of the
/// dump's family, and (for UDP) bound to a port.
fn parse_diag_msg(payload: &[u8], dump: Dump) -> Result<Option<Socket>, SockDiagError> {
    let msg = payload
        .get(..INET_DIAG_MSG_LEN)
        .ok_or_else(|| SockDiagError::Malformed {
            what: dump.what(),
            why: format!(
                "a socket message of {} bytes, less than {INET_DIAG_MSG_LEN}",
                payload.len()
            ),
        })?;
    let family = msg.get(MSG_FAMILY).copied().unwrap_or(0);
    let state = msg.get(MSG_STATE).copied().unwrap_or(0);
    if family != dump.family() || state != dump.state() {
        return Ok(None);
    }
    // The port and the address are in network byte order.
    let port = msg
        .get(MSG_SPORT..MSG_SPORT + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_be_bytes)
        .unwrap_or(0);
    if dump.proto == Proto::Udp && port == 0 {
        return Ok(None);
    }
    let address = if dump.v6 {
        let Some(bytes) = msg
            .get(MSG_SRC..MSG_SRC + 16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
        else {
            return Ok(None);
        };
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        let Some(bytes) = msg
            .get(MSG_SRC..MSG_SRC + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        else {
            return Ok(None);
        };
        IpAddr::V4(Ipv4Addr::from(bytes))
    };
    let inode = u32_at(msg, MSG_INODE).unwrap_or(0);
    Ok(Some(Socket {
        proto: dump.proto,
        address,
        port,
        inode: u64::from(inode),
        process: None,
    }))
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    u32_at(bytes, at).map(|v| v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TCP4: Dump = Dump {
        proto: Proto::Tcp,
        v6: false,
    };
    const UDP6: Dump = Dump {
        proto: Proto::Udp,
        v6: true,
    };

    /// One netlink message: header and payload, padded to 4 bytes.
    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((NLMSG_HDR_LEN + payload.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&0x2u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&4242u32.to_ne_bytes());
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn diag_msg(family: u8, state: u8, port: u16, src: &[u8], inode: u32) -> Vec<u8> {
        let mut m = vec![0u8; INET_DIAG_MSG_LEN];
        m[MSG_FAMILY] = family;
        m[MSG_STATE] = state;
        m[MSG_SPORT..MSG_SPORT + 2].copy_from_slice(&port.to_be_bytes());
        m[MSG_SRC..MSG_SRC + src.len()].copy_from_slice(src);
        m[MSG_INODE..MSG_INODE + 4].copy_from_slice(&inode.to_ne_bytes());
        m
    }

    #[test]
    fn the_request_asks_for_listening_tcp_of_one_family() {
        let req = request(TCP4, 7);
        assert_eq!(u32_at(&req, 0), Some(72));
        assert_eq!(u16_at(&req, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(u16_at(&req, 6), Some(0x301));
        assert_eq!(u32_at(&req, 8), Some(7));
        assert_eq!(req[16], libc::AF_INET as u8);
        assert_eq!(req[17], libc::IPPROTO_TCP as u8);
        assert_eq!(u32_at(&req, 20), Some(1 << 10));
        assert!(req[24..].iter().all(|&b| b == 0));
        let udp = request(UDP6, 1);
        assert_eq!(udp[16], libc::AF_INET6 as u8);
        assert_eq!(udp[17], libc::IPPROTO_UDP as u8);
        assert_eq!(u32_at(&udp, 20), Some(1 << 7));
    }

    #[test]
    fn sockets_are_read_until_done() {
        let mut datagram = message(
            SOCK_DIAG_BY_FAMILY,
            3,
            &diag_msg(libc::AF_INET as u8, TCP_LISTEN, 22, &[0, 0, 0, 0], 1526),
        );
        datagram.extend(message(
            SOCK_DIAG_BY_FAMILY,
            3,
            &diag_msg(
                libc::AF_INET as u8,
                TCP_LISTEN,
                3306,
                &[127, 0, 0, 1],
                20433,
            ),
        ));
        // A socket in another state, and one of a stale sequence, are skipped.
        datagram.extend(message(
            SOCK_DIAG_BY_FAMILY,
            3,
            &diag_msg(libc::AF_INET as u8, 1, 80, &[10, 0, 0, 1], 1),
        ));
        datagram.extend(message(
            SOCK_DIAG_BY_FAMILY,
            2,
            &diag_msg(libc::AF_INET as u8, TCP_LISTEN, 81, &[10, 0, 0, 1], 2),
        ));
        let mut sockets = Vec::new();
        assert_eq!(
            parse_datagram(&datagram, TCP4, 3, &mut sockets).unwrap(),
            Progress::More
        );
        let done = message(NLMSG_DONE, 3, &0i32.to_ne_bytes());
        assert_eq!(
            parse_datagram(&done, TCP4, 3, &mut sockets).unwrap(),
            Progress::Done
        );
        let seen: Vec<(String, u16, u64)> = sockets
            .iter()
            .map(|s| (s.address.to_string(), s.port, s.inode))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("0.0.0.0".to_string(), 22, 1526),
                ("127.0.0.1".to_string(), 3306, 20433)
            ]
        );
        assert!(sockets.iter().all(|s| s.proto == Proto::Tcp));
    }

    #[test]
    fn udp_needs_a_port_and_v6_reads_sixteen_bytes() {
        let mut loopback = [0u8; 16];
        loopback[15] = 1;
        let mut datagram = message(
            SOCK_DIAG_BY_FAMILY,
            1,
            &diag_msg(libc::AF_INET6 as u8, TCP_CLOSE, 5353, &loopback, 19320),
        );
        datagram.extend(message(
            SOCK_DIAG_BY_FAMILY,
            1,
            &diag_msg(libc::AF_INET6 as u8, TCP_CLOSE, 0, &loopback, 19321),
        ));
        // An IPv4 answer to an IPv6 dump is not trusted.
        datagram.extend(message(
            SOCK_DIAG_BY_FAMILY,
            1,
            &diag_msg(libc::AF_INET as u8, TCP_CLOSE, 53, &[127, 0, 0, 53], 9),
        ));
        let mut sockets = Vec::new();
        parse_datagram(&datagram, UDP6, 1, &mut sockets).unwrap();
        assert_eq!(sockets.len(), 1, "{sockets:?}");
        assert_eq!(sockets[0].address, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(sockets[0].port, 5353);
        assert_eq!(sockets[0].proto, Proto::Udp);
        assert_eq!(sockets[0].inode, 19320);
    }

    #[test]
    fn errors_and_bad_lengths_are_refused() {
        let mut sockets = Vec::new();
        let error = message(NLMSG_ERROR, 1, &(-libc::EPERM).to_ne_bytes());
        let Err(SockDiagError::Refused { source, .. }) =
            parse_datagram(&error, TCP4, 1, &mut sockets)
        else {
            panic!("an NLMSG_ERROR ends the dump");
        };
        assert_eq!(source.raw_os_error(), Some(libc::EPERM));
        let failed_done = message(NLMSG_DONE, 1, &(-libc::EINTR).to_ne_bytes());
        assert!(matches!(
            parse_datagram(&failed_done, TCP4, 1, &mut sockets),
            Err(SockDiagError::Refused { .. })
        ));
        let mut long = message(NLMSG_NOOP, 1, &[0; 4]);
        long[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(
            parse_datagram(&long, TCP4, 1, &mut sockets),
            Err(SockDiagError::Malformed { .. })
        ));
        let short = message(SOCK_DIAG_BY_FAMILY, 1, &[2, 10, 0, 0]);
        assert!(matches!(
            parse_datagram(&short, TCP4, 1, &mut sockets),
            Err(SockDiagError::Malformed { .. })
        ));
        assert!(matches!(
            parse_datagram(&[1, 2, 3], TCP4, 1, &mut sockets),
            Err(SockDiagError::Malformed { .. })
        ));
        let min_error = message(NLMSG_ERROR, 1, &i32::MIN.to_ne_bytes());
        assert!(parse_datagram(&min_error, TCP4, 1, &mut sockets).is_err());
        assert!(sockets.is_empty());
    }

    proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), seq: u32) {
            let mut sockets = Vec::new();
            let _ = parse_datagram(&bytes, TCP4, seq, &mut sockets);
            let _ = parse_datagram(&bytes, UDP6, seq, &mut sockets);
        }

        #[test]
        fn parser_never_panics_on_near_valid_messages(
            kind in prop_oneof![Just(1u16), Just(2), Just(3), Just(4), Just(20), any::<u16>()],
            len_delta in -20i64..20,
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut m = message(kind, 5, &payload);
            let len = (NLMSG_HDR_LEN as i64 + payload.len() as i64 + len_delta).max(0) as u32;
            m[0..4].copy_from_slice(&len.to_ne_bytes());
            let mut sockets = Vec::new();
            let _ = parse_datagram(&m, TCP4, 5, &mut sockets);
            let _ = parse_datagram(&m, UDP6, 5, &mut sockets);
        }
    }
}
