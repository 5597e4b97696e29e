//! Listening sockets, as `/proc/net/{tcp,tcp6,udp,udp6}` list them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A TCP socket in LISTEN state or a bound UDP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    pub proto: Proto,
    pub address: IpAddr,
    pub port: u16,
    pub inode: u64,
    /// The owning process (`pid`, `comm`), when `/proc/*/fd` shows it.
    pub process: Option<(u32, String)>,
}

impl Socket {
    /// Bound to a loopback address only (127.0.0.0/8, ::1, or v4-mapped loopback).
    pub fn is_loopback(&self) -> bool {
        match self.address {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => {
                a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListeningFact {
    pub sockets: Vec<Socket>,
}
