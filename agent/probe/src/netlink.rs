//! Opening netlink sockets for the probes that ask the kernel directly
//! (socket tables, the nf_tables generation), with a receive time limit so a
//! silent kernel never hangs a probe.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Why a netlink socket could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open the netlink socket: {0}")]
    Open(io::Error),
    #[error("cannot set the netlink receive timeout: {0}")]
    Timeout(io::Error),
}

/// A raw, close-on-exec netlink socket of `protocol` whose receives give up
/// after `timeout_ms` milliseconds.
pub(crate) fn open(
    protocol: libc::c_int,
    timeout_ms: libc::suseconds_t,
) -> Result<OwnedFd, NetlinkError> {
    // SAFETY: socket() takes no pointers; the result is checked below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if raw < 0 {
        return Err(NetlinkError::Open(io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: timeval is plain data; all zeroes is a valid value.
    let mut timeout: libc::timeval = unsafe { std::mem::zeroed() };
    timeout.tv_sec = (timeout_ms / 1000) as libc::time_t;
    timeout.tv_usec = (timeout_ms % 1000) * 1000;
    // SAFETY: the option value points at a live timeval of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(NetlinkError::Timeout(io::Error::last_os_error()));
    }
    Ok(fd)
}
