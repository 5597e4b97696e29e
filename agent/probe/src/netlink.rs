//! Netlink sockets for the probes that ask the kernel directly (socket
//! tables, the nf_tables generation): opening one with a receive time limit
//! (so a silent kernel never hangs a probe), sending a request to the
//! kernel, receiving the kernel's datagrams, and reading native-endian
//! integers out of them with bounds checks.

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

/// Sends `request` to the kernel (port id 0) as one datagram; a short send
/// is an error.
pub(crate) fn send(fd: &OwnedFd, request: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain data; all zeroes is a valid value.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    loop {
        // SAFETY: the buffer and the address point at live values of the
        // lengths given.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if sent as usize != request.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
        }
        return Ok(());
    }
}

/// Receives one datagram from the kernel into `buf` and returns its real
/// length, which is more than `buf.len()` when the datagram did not fit
/// (the caller refuses it). Only the kernel (port id 0) answers; another
/// process could send to our port id, and its datagrams are dropped.
pub(crate) fn receive(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: sockaddr_nl is plain data; all zeroes is a valid value.
        let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: the buffer and the address are live and writable for the
        // lengths given. MSG_TRUNC makes the result the datagram's real
        // length, so a truncated datagram is seen.
        let got = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&mut from as *mut libc::sockaddr_nl).cast(),
                &mut from_len,
            )
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if from.nl_family != libc::AF_NETLINK as libc::sa_family_t || from.nl_pid != 0 {
            continue;
        }
        return Ok(got as usize);
    }
}

/// The native-endian u16 at `at`, if `bytes` holds one there.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_ne_bytes(raw))
}

/// The native-endian u32 at `at`, if `bytes` holds one there.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_ne_bytes(raw))
}
