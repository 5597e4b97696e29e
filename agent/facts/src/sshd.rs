//! The sshd configuration model: directives in file order, Match blocks, and
//! the rules that turn them into effective values the way `sshd -T` does.
//!
//! The probe parses the files (following `Include`) into an [`SshdConfig`];
//! everything here is pure.

use serde::{Deserialize, Serialize};

use crate::Evidence;

/// sshd under the root: absent, or its parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SshdFact {
    /// No sshd binary under the root (`/usr/sbin/sshd`).
    NotInstalled,
    Config(SshdConfig),
}

/// The whole configuration with every `Include` expanded in place.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SshdConfig {
    /// Every directive in the order sshd reads it.
    pub directives: Vec<Directive>,
    /// The Match blocks, referenced by [`Directive::block`].
    pub blocks: Vec<MatchBlock>,
    /// Every file that was read (root-relative), for the drift watcher.
    pub files: Vec<String>,
}

/// One `Keyword args...` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directive {
    /// Canonical lower-case keyword, aliases folded (`challengeresponseauthentication`
    /// becomes `kbdinteractiveauthentication`).
    pub keyword: String,
    /// Arguments after unquoting.
    pub args: Vec<String>,
    /// Index into [`SshdConfig::blocks`] when the line is inside a Match block.
    pub block: Option<usize>,
    pub evidence: Evidence,
}

/// A `Match` line and its criteria.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchBlock {
    pub criteria: Vec<Criterion>,
    pub evidence: Evidence,
}

/// One criterion of a Match line (`User alice,bob`, `Address 10.0.0.0/8`, `All`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    /// Lower-case criterion name: all, user, group, host, address, localaddress,
    /// localport, rdomain.
    pub name: String,
    /// The pattern list as written (comma-separated, `!` negation allowed).
    pub patterns: String,
}

/// The connection a Match is evaluated against (`sshd -T -C ...`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Connection {
    pub user: Option<String>,
    /// The user's groups (from the root's `/etc/group` and primary gid).
    pub groups: Vec<String>,
    pub host: Option<String>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    pub lport: Option<u16>,
    pub rdomain: Option<String>,
}

/// An effective value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveValue {
    /// The value as `sshd -T` prints it after the keyword.
    pub value: String,
    /// The line that set it; `None` for OpenSSH's compiled default.
    pub evidence: Option<Evidence>,
}
