//! Who is on the other end of a local API connection: the kernel's record of
//! the connecting process (`SO_PEERCRED` for uid, gid and pid,
//! `SO_PEERGROUPS` for its supplementary groups, both taken when it called
//! `connect`), and the rule that decides whether it may call.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tonic::transport::server::Connected;

/// The credentials of a connected process, as the kernel recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// Supplementary groups (empty when the kernel could not say).
    pub groups: Vec<u32>,
}

/// What every request of a connection carries in its extensions: the peer,
/// or `None` when its credentials could not be read (then it is refused).
#[derive(Debug, Clone)]
pub struct PeerInfo(pub Option<Arc<Peer>>);

/// An accepted connection with the credentials read at accept time.
#[derive(Debug)]
pub struct PeerStream {
    io: UnixStream,
    peer: PeerInfo,
}

impl PeerStream {
    pub fn new(io: UnixStream) -> PeerStream {
        let peer = match io.peer_cred() {
            Ok(cred) => {
                let groups = match peer_groups(&io) {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::debug!("SO_PEERGROUPS failed, using the primary group only: {e}");
                        Vec::new()
                    }
                };
                Some(Arc::new(Peer {
                    uid: cred.uid(),
                    gid: cred.gid(),
                    pid: cred.pid(),
                    groups,
                }))
            }
            Err(e) => {
                tracing::warn!("cannot read the peer credentials of a local API connection: {e}");
                None
            }
        };
        PeerStream {
            io,
            peer: PeerInfo(peer),
        }
    }
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// `SO_PEERGROUPS` (Linux 4.13): its value on SPARC differs from every other
/// architecture's.
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 0x003d;
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_PEERGROUPS: libc::c_int = 59;

/// The supplementary groups of the process that connected, as the kernel
/// recorded them at `connect` (no race with the process exiting or changing
/// its groups later, unlike reading `/proc/<pid>/status`).
fn peer_groups(io: &UnixStream) -> io::Result<Vec<u32>> {
    let fd = io.as_raw_fd();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * size_of::<libc::gid_t>())
            .map_err(|_| io::Error::other("too many groups"))?;
        // SAFETY: `groups` is a live buffer of `len` bytes, and the kernel
        // writes at most `len` bytes into it and stores the size it needs in
        // `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = usize::try_from(len).unwrap_or(0) / size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(needed);
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        // ERANGE: the buffer was too small and `len` holds the size needed;
        // NGROUPS_MAX is 65536, so this grows at most a few times.
        if err.raw_os_error() == Some(libc::ERANGE) && needed > groups.len() && needed <= 65536 {
            groups.resize(needed, 0);
            continue;
        }
        return Err(err);
    }
}

/// Who may call: root always, and members of `gid` (primary or supplementary)
/// when it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub gid: Option<u32>,
}

impl Access {
    pub fn allows(&self, peer: &Peer) -> bool {
        if peer.uid == 0 {
            return true;
        }
        match self.gid {
            Some(gid) => peer.gid == gid || peer.groups.contains(&gid),
            None => false,
        }
    }
}

/// The gid of group `name` in the text of an `/etc/group` file; malformed
/// lines are skipped.
pub fn group_gid(etc_group: &str, name: &str) -> Option<u32> {
    etc_group.lines().find_map(|line| {
        let mut fields = line.split(':');
        let group = fields.next()?;
        let _password = fields.next()?;
        let gid = fields.next()?;
        (group == name).then(|| gid.trim().parse().ok()).flatten()
    })
}

/// The gid of group `name` on this host (from `/etc/group`), if it exists.
pub fn lookup_group(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    group_gid(&text, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lookup_skips_malformed_lines() {
        let text = "root:x:0:\n\
                    garbage\n\
                    hardend-bad:x:notanumber:\n\
                    hardend:x:997:alice,bob\n\
                    hardend:x:998:\n";
        assert_eq!(group_gid(text, "hardend"), Some(997));
        assert_eq!(group_gid(text, "root"), Some(0));
        assert_eq!(group_gid(text, "hardend-bad"), None);
        assert_eq!(group_gid(text, "nobody"), None);
        assert_eq!(group_gid(text, "garbage"), None);
    }

    #[test]
    fn access_rule() {
        let peer = |uid, gid, groups: &[u32]| Peer {
            uid,
            gid,
            pid: Some(1),
            groups: groups.to_vec(),
        };
        let group = Access { gid: Some(997) };
        let root_only = Access { gid: None };
        assert!(group.allows(&peer(0, 0, &[])));
        assert!(root_only.allows(&peer(0, 5, &[])));
        assert!(group.allows(&peer(1000, 997, &[])));
        assert!(group.allows(&peer(1000, 1000, &[4, 997])));
        assert!(!group.allows(&peer(1000, 1000, &[4, 998])));
        assert!(!root_only.allows(&peer(1000, 997, &[997])));
        assert!(!group.allows(&peer(65534, 65534, &[])));
    }
}
