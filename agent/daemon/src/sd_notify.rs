//! The systemd notification protocol, by hand: one datagram per message to
//! the Unix socket named in `$NOTIFY_SOCKET` (a path, or an abstract name
//! written with a leading `@`). READY, RELOADING, STOPPING, WATCHDOG and
//! STATUS messages; no libsystemd.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Problems talking to systemd's notification socket.
#[derive(Debug, thiserror::Error)]
pub enum SdNotifyError {
    /// `$NOTIFY_SOCKET` is not a usable socket address.
    #[error("NOTIFY_SOCKET `{value}` is not a usable socket address: {source}")]
    Address { value: String, source: io::Error },
    /// The datagram could not be sent.
    #[error("cannot notify systemd at `{value}`: {source}")]
    Send { value: String, source: io::Error },
}

/// A handle on systemd's notification socket; every call is a no-op when
/// the daemon was not started by systemd (`$NOTIFY_SOCKET` unset).
#[derive(Debug, Clone, Default)]
pub struct SdNotify {
    target: Option<String>,
    watchdog: Option<Duration>,
}

impl SdNotify {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` from the
    /// environment. The watchdog is enabled only when `$WATCHDOG_PID` is
    /// unset or names this process.
    pub fn from_env() -> SdNotify {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|v| !v.is_empty());
        let pid_ok = match std::env::var("WATCHDOG_PID") {
            Ok(pid) => pid.trim().parse::<u32>().ok() == Some(std::process::id()),
            Err(_) => true,
        };
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && pid_ok)
            .map(Duration::from_micros);
        SdNotify { target, watchdog }
    }

    /// A handle that notifies `target` (a path or `@abstract`), for tests.
    pub fn to_socket(target: &str, watchdog: Option<Duration>) -> SdNotify {
        SdNotify {
            target: Some(target.to_string()),
            watchdog,
        }
    }

    /// A handle that sends nothing.
    pub fn disabled() -> SdNotify {
        SdNotify::default()
    }

    /// How often to send WATCHDOG=1: half the configured watchdog timeout.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// Sends one message (`KEY=value` lines). Without a socket it does nothing.
    pub fn send(&self, message: &str) -> Result<(), SdNotifyError> {
        let Some(value) = &self.target else {
            return Ok(());
        };
        let address_err = |source| SdNotifyError::Address {
            value: value.clone(),
            source,
        };
        let addr = match value.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).map_err(address_err)?,
            None => SocketAddr::from_pathname(value).map_err(address_err)?,
        };
        let send_err = |source| SdNotifyError::Send {
            value: value.clone(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(send_err)?;
        socket
            .send_to_addr(message.as_bytes(), &addr)
            .map_err(send_err)?;
        Ok(())
    }

    /// Sends a message, logging (not returning) a failure: a daemon must not
    /// stop because systemd did not listen.
    pub fn notify(&self, message: &str) {
        if let Err(e) = self.send(message) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    /// READY=1 with a status line.
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// RELOADING=1 with the monotonic time systemd asks for since v253.
    pub fn reloading(&self) {
        let usec = monotonic_usec();
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    /// STOPPING=1.
    pub fn stopping(&self) {
        self.notify("STOPPING=1\nSTATUS=stopping");
    }

    /// WATCHDOG=1.
    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }

    /// STATUS=..., the line `systemctl status` shows.
    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={}", one_line(status)));
    }
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC
    // is always available on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).expect("bind");
        let n = SdNotify::to_socket(path.to_str().expect("utf-8"), None);
        n.ready("3 rules, 1 failing");
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=3 rules, 1 failing");

        let name = format!("hardend-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract");
        let server = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        let n = SdNotify::to_socket(&format!("@{name}"), Some(Duration::from_secs(10)));
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
        n.watchdog();
        let len = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = SdNotify::disabled();
        assert!(n.send("READY=1").is_ok());
        assert_eq!(n.watchdog_interval(), None);
    }
}
