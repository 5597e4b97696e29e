//! Listening sockets from the kernel's socket tables (sock_diag netlink, or
//! `/proc/net/{tcp,tcp6,udp,udp6}` when that is unavailable), with the
//! processes that own them (from `/proc/[pid]/fd`).
//!
//! Netlink is asked first because the kernel can then skip its
//! established-connection table, which `/proc/net/tcp` always walks (see
//! [`sock_diag`]). Both sources give the same [`Socket`]s, sorted the same
//! way. Sockets are live state: on an offline root the fact is not
//! applicable.

pub mod sock_diag;

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hardend_facts::listening::{Proto, Socket};
use hardend_facts::{ListeningFact, Live, ProbeFailure, Probed};

use crate::{RootError, RootFs};
pub use sock_diag::SockDiagError;

/// TCP_LISTEN in the kernel's `st` column.
const TCP_LISTEN: u8 = 0x0A;
/// TCP_CLOSE: what an unconnected, bound UDP socket shows.
const UDP_UNCONNECTED: u8 = 0x07;

/// The longest process name kept (the kernel's `comm` is at most 15 bytes).
const MAX_COMM_CHARS: usize = 64;

/// Errors of reading the socket tables.
#[derive(Debug, thiserror::Error)]
pub enum ListeningError {
    #[error("cannot read the socket table {path}: {source}")]
    Table { path: String, source: RootError },
    #[error(transparent)]
    SockDiag(#[from] SockDiagError),
}

/// Where the socket list is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketTables {
    /// The sock_diag netlink interface of the calling process's network
    /// namespace.
    SockDiag,
    /// The `/proc/net` tables below the root.
    ProcNet,
}

/// Reads every listening TCP socket and bound UDP socket of the running
/// system, IPv4 and IPv6, with its owning process when it can be found.
pub fn probe(fs: &RootFs) -> Probed<Live<ListeningFact>> {
    if !fs.is_live() {
        return Ok(Live::NotApplicable(
            "offline root: listening sockets are state of the running system".to_string(),
        ));
    }
    // Netlink first; /proc/net when the kernel has no sock_diag for a
    // protocol (a module missing), or it refuses us.
    read_sockets(fs, SocketTables::SockDiag)
        .or_else(|_| read_sockets(fs, SocketTables::ProcNet))
        .map(|sockets| Live::Value(ListeningFact { sockets }))
        .map_err(|e| ProbeFailure::new(e.to_string()))
}

/// Reads the sockets from one source, sorted by protocol, address, port and
/// inode, with their owning processes attached. The root must be live: the
/// netlink source always describes the calling process's own network
/// namespace.
pub fn read_sockets(fs: &RootFs, tables: SocketTables) -> Result<Vec<Socket>, ListeningError> {
    let mut sockets = match tables {
        SocketTables::SockDiag => sock_diag::read_sockets()?,
        SocketTables::ProcNet => read_proc_net(fs)?,
    };
    sockets.sort_by(|a, b| {
        (a.proto, a.address, a.port, a.inode).cmp(&(b.proto, b.address, b.port, b.inode))
    });
    if !sockets.is_empty() {
        attach_processes(fs, &mut sockets);
    }
    Ok(sockets)
}

fn read_proc_net(fs: &RootFs) -> Result<Vec<Socket>, ListeningError> {
    let mut sockets = Vec::new();
    for (path, proto, v6) in [
        ("/proc/net/tcp", Proto::Tcp, false),
        ("/proc/net/tcp6", Proto::Tcp, true),
        ("/proc/net/udp", Proto::Udp, false),
        ("/proc/net/udp6", Proto::Udp, true),
    ] {
        match fs.read_to_string(path) {
            Ok(text) => sockets.extend(parse_proc_net(&text, proto, v6)),
            // A kernel booted with IPv6 disabled has no tcp6/udp6 tables.
            Err(e) if v6 && e.is_not_found() => {}
            Err(source) => {
                return Err(ListeningError::Table {
                    path: path.to_string(),
                    source,
                });
            }
        }
    }
    Ok(sockets)
}

/// Parses one `/proc/net/{tcp,tcp6,udp,udp6}` table: TCP sockets in LISTEN
/// state, and UDP sockets that are bound to a port and not connected. Lines
/// that do not parse (the header, a truncated line) are skipped.
pub fn parse_proc_net(text: &str, proto: Proto, v6: bool) -> Vec<Socket> {
    text.lines()
        .filter_map(|line| parse_line(line, proto, v6))
        .collect()
}

fn parse_line(line: &str, proto: Proto, v6: bool) -> Option<Socket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // sl, local_address, rem_address, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode
    if fields.len() < 10 || !fields[0].ends_with(':') {
        return None;
    }
    let (address, port) = fields[1].split_once(':')?;
    let address = if v6 {
        IpAddr::V6(parse_ipv6(address)?)
    } else {
        IpAddr::V4(parse_ipv4(address)?)
    };
    let port = u16::from_str_radix(port, 16).ok()?;
    let state = u8::from_str_radix(fields[3], 16).ok()?;
    let wanted = match proto {
        Proto::Tcp => state == TCP_LISTEN,
        Proto::Udp => state == UDP_UNCONNECTED && port != 0,
    };
    if !wanted {
        return None;
    }
    let inode = fields[9].parse::<u64>().ok()?;
    Some(Socket {
        proto,
        address,
        port,
        inode,
        process: None,
    })
}

/// The kernel prints an IPv4 address as its 32-bit word in host byte order.
fn parse_ipv4(hex: &str) -> Option<Ipv4Addr> {
    if hex.len() != 8 {
        return None;
    }
    let word = u32::from_str_radix(hex, 16).ok()?;
    Some(Ipv4Addr::from(word.to_ne_bytes()))
}

/// The kernel prints an IPv6 address as four 32-bit words, each in host
/// byte order.
fn parse_ipv6(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    Some(Ipv6Addr::from(bytes))
}

/// Finds the process holding each socket by reading the `socket:[INODE]`
/// links in `/proc/[pid]/fd`. Processes that vanish or cannot be read are
/// skipped: the socket keeps `process: None`. The scan stops as soon as
/// every socket has its process.
fn attach_processes(fs: &RootFs, sockets: &mut [Socket]) {
    let mut by_inode: HashMap<u64, Vec<usize>> = HashMap::new();
    for (index, socket) in sockets.iter().enumerate() {
        if socket.inode != 0 {
            by_inode.entry(socket.inode).or_default().push(index);
        }
    }
    if by_inode.is_empty() {
        return;
    }
    // The root is the running system here, so /proc is read directly: going
    // through RootFs::resolve for every descriptor would cost a stat per path
    // component on hosts with many thousands of descriptors.
    let proc_dir = fs.host_path("/proc");
    let Ok(entries) = fs::read_dir(&proc_dir) else {
        return;
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect();
    pids.sort_unstable();

    let mut link = Vec::with_capacity(64);
    for pid in pids {
        if by_inode.is_empty() {
            break;
        }
        let pid_dir = proc_dir.join(pid.to_string());
        let Some(mut fds) = FdDir::open(&pid_dir.join("fd")) else {
            continue;
        };
        let mut comm: Option<String> = None;
        while let Some(target) = fds.next_link(&mut link) {
            let Some(inode) = socket_inode_bytes(target) else {
                continue;
            };
            let Some(indices) = by_inode.remove(&inode) else {
                continue;
            };
            let name = comm
                .get_or_insert_with(|| read_comm(&pid_dir.join("comm")))
                .clone();
            for index in indices {
                if let Some(socket) = sockets.get_mut(index) {
                    socket.process = Some((pid, name.clone()));
                }
            }
            if by_inode.is_empty() {
                break;
            }
        }
    }
}

/// An open `/proc/[pid]/fd` directory whose links are read relative to it
/// (`readlinkat`), so the kernel does not look up the process again for
/// every descriptor, as a full path would make it do.
struct FdDir {
    dir: std::ptr::NonNull<libc::DIR>,
}

impl FdDir {
    fn open(path: &std::path::Path) -> Option<FdDir> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: `path` is a valid C string; the result is checked.
        let dir = unsafe { libc::opendir(path.as_ptr()) };
        std::ptr::NonNull::new(dir).map(|dir| FdDir { dir })
    }

    /// The target of the next link in the directory, read into `buf`; None
    /// at the end (or on an error, which ends the scan of this process).
    fn next_link<'b>(&mut self, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
        loop {
            // SAFETY: `self.dir` is an open directory stream owned by us.
            let entry = unsafe { libc::readdir(self.dir.as_ptr()) };
            if entry.is_null() {
                return None;
            }
            // SAFETY: readdir returned a valid entry whose name is a C string
            // that lives until the next readdir on this stream.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            if name.to_bytes().starts_with(b".") {
                continue;
            }
            buf.clear();
            buf.resize(buf.capacity().max(64), 0);
            // SAFETY: the directory's descriptor is open; `name` is a C
            // string; `buf` is writable for its length.
            let len = unsafe {
                libc::readlinkat(
                    libc::dirfd(self.dir.as_ptr()),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            // A descriptor closed meanwhile, or not a link: next one. A
            // target that fills the buffer may be cut; socket links are
            // short, so such a target is not a socket anyway.
            let Ok(len) = usize::try_from(len) else {
                continue;
            };
            if len >= buf.len() {
                continue;
            }
            return buf.get(..len);
        }
    }
}

impl Drop for FdDir {
    fn drop(&mut self) {
        // SAFETY: the stream is open and closed exactly once, here.
        unsafe {
            libc::closedir(self.dir.as_ptr());
        }
    }
}

/// The inode of a `socket:[INODE]` link target.
fn socket_inode_bytes(link: &[u8]) -> Option<u64> {
    socket_inode(std::str::from_utf8(link).ok()?)
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn read_comm(path: &std::path::Path) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    text.trim_end_matches('\n')
        .chars()
        .take(MAX_COMM_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1526 1 00000000a0835614 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 20433 1 0000000000000000 100 0 0 10 0
   2: 020200C0:D47E 507100CB:0050 06 00000000:00000000 03:00000011 00000000     0        0 0 3 00000000f583873d
   3: 0F02000A:0016 0202000A:C5F2 01 00000000:00000000 02:000A7E2B 00000000     0        0 31337 4 0000000000000000 20 4 31 10 -1
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:20FB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19321 1 00000000ab72861e 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19400 1 00000000ab72861e 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19401 1 00000000ab72861e 100 0 0 10 0
";

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  120: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 16402 2 0000000000000000 0
  310: 00000000:0143 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 16499 2 0000000000000000 0
  311: 0F02000A:9A4B 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 16500 2 0000000000000000 0
  312: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 16501 2 0000000000000000 0
";

    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
10568: 00000000000000000000000001000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 19320 2 000000005f284e75 0
";

    #[cfg(target_endian = "little")]
    #[test]
    fn tcp4_listeners_are_found_and_connections_skipped() {
        let sockets = parse_proc_net(TCP, Proto::Tcp, false);
        assert_eq!(sockets.len(), 2, "{sockets:?}");
        assert_eq!(sockets[0].address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(sockets[0].port, 22);
        assert_eq!(sockets[0].inode, 1526);
        assert!(!sockets[0].is_loopback());
        assert_eq!(sockets[1].address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(sockets[1].port, 3306);
        assert!(sockets[1].is_loopback());
        assert_eq!(sockets[1].proto, Proto::Tcp);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn tcp6_addresses_are_four_host_order_words() {
        let sockets = parse_proc_net(TCP6, Proto::Tcp, true);
        assert_eq!(sockets.len(), 3);
        assert_eq!(sockets[0].address, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(sockets[0].port, 8443);
        assert_eq!(sockets[1].address, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(sockets[1].port, 631);
        assert!(sockets[1].is_loopback());
        assert_eq!(
            sockets[2].address,
            IpAddr::V6("::ffff:127.0.0.1".parse().unwrap())
        );
        assert!(sockets[2].is_loopback(), "v4-mapped loopback");
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn udp_keeps_bound_unconnected_sockets_only() {
        let sockets = parse_proc_net(UDP, Proto::Udp, false);
        let ports: Vec<(IpAddr, u16)> = sockets.iter().map(|s| (s.address, s.port)).collect();
        assert_eq!(
            ports,
            vec![
                (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)), 53),
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 323),
            ]
        );
        let v6 = parse_proc_net(UDP6, Proto::Udp, true);
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].address, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(v6[0].port, 5353);
        assert_eq!(v6[0].inode, 19320);
    }

    #[test]
    fn wrong_width_addresses_are_skipped() {
        // A v6 table parsed as v4 (and the other way round) yields nothing.
        assert!(parse_proc_net(TCP6, Proto::Tcp, false).is_empty());
        assert!(parse_proc_net(TCP, Proto::Tcp, true).is_empty());
    }

    #[test]
    fn socket_links_are_recognised() {
        assert_eq!(socket_inode("socket:[19320]"), Some(19320));
        assert_eq!(socket_inode("pipe:[19320]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn offline_roots_are_not_applicable() {
        let dir = tempfile::tempdir().unwrap();
        let fact = probe(&RootFs::new(dir.path())).unwrap();
        assert!(matches!(fact, Live::NotApplicable(_)));
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "(.{0,120}\n){0,6}", udp: bool, v6: bool) {
            let proto = if udp { Proto::Udp } else { Proto::Tcp };
            let _ = parse_proc_net(&text, proto, v6);
        }

        #[test]
        fn parser_never_panics_on_near_valid_lines(
            addr in "[0-9A-Fa-fé]{0,34}", port in "[0-9A-Fx]{0,6}", st in "[0-9A-F]{0,3}", inode in "[0-9-]{0,22}",
            udp: bool, v6: bool,
        ) {
            let line = format!("   0: {addr}:{port} 00000000:0000 {st} 0:0 0:0 0 0 0 {inode} 1\n");
            let proto = if udp { Proto::Udp } else { Proto::Tcp };
            let _ = parse_proc_net(&line, proto, v6);
        }
    }
}
