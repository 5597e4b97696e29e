//! journald's native protocol, written by hand over a Unix datagram socket:
//! the encoding of fields, the socket, and the sealed-memfd path for entries
//! too large for one datagram.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Entry, LineSink};
use crate::{AlertSink, DriftEvent};

/// Where journald listens for native-protocol datagrams.
pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

/// How long one write may wait for a slow journald before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_millis(500);

/// Failures to reach journald.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot connect to the journal socket {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    #[error("cannot write to the journal socket {path}: {source}")]
    Send { path: PathBuf, source: io::Error },
    #[error("cannot pass a large journal entry through a memfd: {source}")]
    Memfd { source: io::Error },
}

/// Encodes fields in journald's native format: `KEY=value\n`, or for a value
/// holding a newline `KEY\n`, its length as a little-endian u64, the bytes,
/// and `\n`.
pub fn encode_native(fields: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        } else {
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// Writes entries to journald. A failed write is retried once on a fresh
/// connection (journald may have restarted); if that fails too, the entry goes
/// to stderr, so nothing is lost.
pub struct JournalSink {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    send_buffer: Option<usize>,
    fallback: LineSink,
}

impl std::fmt::Debug for JournalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSink")
            .field("path", &self.path)
            .field("connected", &self.socket.is_some())
            .finish()
    }
}

impl Default for JournalSink {
    fn default() -> Self {
        Self::new()
    }
}

impl JournalSink {
    /// A sink for the system journal. It connects on first use, so it can be
    /// made before journald is up.
    pub fn new() -> JournalSink {
        JournalSink::with_path(DEFAULT_SOCKET)
    }

    /// A sink for the journal socket at `path`, connecting on first use.
    pub fn with_path(path: impl Into<PathBuf>) -> JournalSink {
        let path = path.into();
        let socket = open(&path, None).ok();
        JournalSink {
            path,
            socket,
            send_buffer: None,
            fallback: LineSink::stderr(),
        }
    }

    /// A sink for the journal socket at `path`, or an error when nothing
    /// listens there now.
    pub fn connect(path: impl Into<PathBuf>) -> Result<JournalSink, JournalError> {
        let path = path.into();
        let socket = open(&path, None)?;
        Ok(JournalSink {
            path,
            socket: Some(socket),
            send_buffer: None,
            fallback: LineSink::stderr(),
        })
    }

    /// Where entries go when journald cannot take them (stderr by default).
    pub fn with_fallback(mut self, fallback: LineSink) -> JournalSink {
        self.fallback = fallback;
        self
    }

    /// Sets the socket's send buffer (SO_SNDBUF). Entries larger than it go
    /// through a memfd; tests use a small buffer to exercise that path.
    pub fn set_send_buffer(&mut self, bytes: usize) -> Result<(), JournalError> {
        self.send_buffer = Some(bytes);
        self.socket = Some(open(&self.path, self.send_buffer)?);
        Ok(())
    }

    /// Writes one entry to journald, reconnecting and retrying once on
    /// failure. Does not fall back to stderr.
    pub fn send(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let payload = encode_native(&entry.fields);
        match self.try_send(&payload) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.socket = None;
                self.try_send(&payload)
            }
        }
    }

    /// Writes an entry to journald, or to the fallback when that fails.
    fn emit(&mut self, entry: &Entry) {
        if let Err(e) = self.send(entry) {
            self.fallback.note(&format!(
                "journald is unavailable ({e}); this alert is written here instead"
            ));
            self.fallback.write(entry);
        }
    }

    fn try_send(&mut self, payload: &[u8]) -> Result<(), JournalError> {
        let socket = match &self.socket {
            Some(s) => s,
            None => self.socket.insert(open(&self.path, self.send_buffer)?),
        };
        match socket.send(payload) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) => {
                send_memfd(socket, payload)
            }
            Err(source) => Err(JournalError::Send {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl AlertSink for JournalSink {
    fn drift(&mut self, event: &DriftEvent) {
        self.emit(&Entry::drift(event));
    }

    fn policy_errors(&mut self, errors: &[String]) {
        for error in errors {
            self.emit(&Entry::policy_rejected(error));
        }
    }
}

/// A datagram socket connected to `path`, with a send timeout so a stuck
/// journald cannot hold the daemon's loop for long.
fn open(path: &Path, send_buffer: Option<usize>) -> Result<UnixDatagram, JournalError> {
    let connect = |source| JournalError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let socket = UnixDatagram::unbound().map_err(connect)?;
    socket.connect(path).map_err(connect)?;
    socket
        .set_write_timeout(Some(SEND_TIMEOUT))
        .map_err(connect)?;
    if let Some(bytes) = send_buffer {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: the fd is a valid socket owned by `socket`; the option value
        // points to a c_int that lives across the call, with its size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(connect(io::Error::last_os_error()));
        }
    }
    Ok(socket)
}

/// Passes a payload too large for one datagram as a sealed memfd in an
/// SCM_RIGHTS message, which journald reads as the entry.
fn send_memfd(socket: &UnixDatagram, payload: &[u8]) -> Result<(), JournalError> {
    let fail = |source| JournalError::Memfd { source };
    // SAFETY: the name is a NUL-terminated string; the flags are valid.
    let raw = unsafe {
        libc::memfd_create(
            c"hardend-journal".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut file = File::from(fd);
    file.write_all(payload).map_err(fail)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: the fd is a valid memfd created with MFD_ALLOW_SEALING.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(fail(io::Error::last_os_error()));
    }

    let fd_len = std::mem::size_of::<libc::c_int>() as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    // A u64 buffer keeps the control message aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points to `space` writable bytes, enough for one
    // cmsghdr carrying one fd, so CMSG_FIRSTHDR is non-null and CMSG_DATA
    // points inside the buffer; the fd stays open until sendmsg returns.
    let sent = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(fail(io::Error::other("no room for the control message")));
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
            file.as_raw_fd(),
        );
        libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    Ok(())
}
