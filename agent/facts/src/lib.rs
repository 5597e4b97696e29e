//! Host facts: the plain data that probes produce and the engine consumes.
//!
//! Nothing here reads the host. A [`Facts`] value is a snapshot of exactly the
//! pieces of host state that a set of policies needs, keyed by [`FactKey`].
//! Every fact is a [`Probed`] value: either the state, or the reason it could
//! not be read (which the engine turns into the `error` status, never `pass`).

pub mod accounts;
pub mod dpkgver;
pub mod firewall;
pub mod listening;
pub mod posture;
pub mod rpmver;
pub mod sshd;
pub mod version;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use accounts::AccountsFact;
pub use firewall::FirewallFact;
pub use listening::ListeningFact;
pub use posture::{CertificateFact, PatchesFact, ProcessesFact, RebootFact};
pub use sshd::SshdFact;
pub use version::PackageFormat;

/// Why a fact could not be read. Carried into the result's `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ProbeFailure {
    pub message: String,
}

impl ProbeFailure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A fact as read from the host, or the reason it could not be read.
pub type Probed<T> = Result<T, ProbeFailure>;

/// A place in a file that backs a verdict: the `evidence` of a result.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Evidence {
    /// The path as the operator knows it (relative to the scanned root, starting with `/`).
    pub path: String,
    /// 1-based line number, when the evidence is a line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The text of that line (or a short description of the state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Evidence {
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            text: None,
        }
    }

    pub fn line(path: impl Into<String>, line: u32, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: Some(line),
            text: Some(text.into()),
        }
    }

    pub fn text(path: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            text: Some(text.into()),
        }
    }
}

/// A fact that exists only on a live system (listening sockets, firewall,
/// running services). On an offline root it is not applicable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Live<T> {
    Value(T),
    /// The root is not the running system; the string says why.
    NotApplicable(String),
}

/// One piece of host state a rule needs. The probe collects facts by key; the
/// daemon maps each key to the sources it watches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FactKey {
    /// A kernel parameter: live value and boot configuration.
    Sysctl(String),
    /// The effective sshd configuration.
    Sshd,
    /// A path's metadata, and its lines when `content` is true.
    File { path: String, content: bool },
    /// passwd, shadow, group, login.defs.
    Accounts,
    /// The package database(s).
    Packages,
    /// A systemd unit's enablement and, on a live system, activity.
    Service(String),
    /// Listening sockets from `/proc/net`.
    Listening,
    /// The netfilter ruleset.
    Firewall,
    /// Installed packages against the apt lists of security suites, or dnf's
    /// cached security advisories on an rpm host.
    Patches,
    /// `/run/reboot-required` and (live) the running kernel against the installed ones.
    Reboot,
    /// Live processes that map deleted files.
    Processes,
    /// The certificate(s) at a path: a file, or every file in a directory.
    Certificate(String),
}

/// Where a fact comes from, for the drift watcher.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    /// A file or directory under the root (host path, root already joined).
    Path(std::path::PathBuf),
    /// State that raises no inotify event and has to be polled.
    Poll(FactKey),
}

/// A kernel parameter as seen live and as configured for boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlFact {
    /// The live value with runs of whitespace folded to one space;
    /// `Ok(None)` when `/proc/sys/...` has no such file (offline image).
    pub live: Probed<Option<String>>,
    /// The path of the live file, for evidence (`/proc/sys/net/ipv4/ip_forward`).
    pub live_path: String,
    /// The last assignment across the sysctl.d directories, in systemd-sysctl order.
    pub configured: Probed<Option<ConfiguredValue>>,
}

/// A value set by a configuration file line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfiguredValue {
    pub value: String,
    pub evidence: Evidence,
}

/// What kind of filesystem object a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// Metadata and (optionally) content of one path, not following a final symlink
/// only when it dangles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    /// The path as written in the policy (relative to the root).
    pub path: String,
    pub stat: Option<FileStat>,
    /// The file's lines, when content was asked for and the path is a regular file.
    pub lines: Option<Probed<Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub kind: FileKind,
    /// Permission bits, including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The owner's name from the root's own `/etc/passwd`, when it is listed there.
    pub owner: Option<String>,
    /// The group's name from the root's own `/etc/group`, when it is listed there.
    pub group: Option<String>,
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Which database said so, with the line of its stanza when there is one.
    pub evidence: Evidence,
}

/// The package databases under the root.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PackagesFact {
    /// Installed packages by name (multi-arch duplicates collapse to one).
    pub installed: BTreeMap<String, Package>,
    /// The databases that were read (`/var/lib/dpkg/status`, ...).
    pub databases: Vec<String>,
    /// Which kind of database they are, which decides how versions order.
    #[serde(default)]
    pub format: PackageFormat,
}

/// A systemd unit as its files and links describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFact {
    pub unit: String,
    /// The unit file that defines it, when there is one.
    pub unit_file: Option<String>,
    /// Linked to `/dev/null` in `/etc/systemd/system` or `/run/systemd/system`.
    pub masked: bool,
    /// The `*.wants`/`*.requires` links (or alias links) that enable it.
    pub enabled_by: Vec<Evidence>,
    /// Live activity: `Ok(Some(true))` active, `Ok(Some(false))` inactive,
    /// not applicable on an offline root, error when systemd cannot be asked.
    pub active: Live<Probed<bool>>,
}

impl ServiceFact {
    /// A masked unit counts as not enabled, whatever links exist.
    pub fn enabled(&self) -> bool {
        !self.masked && !self.enabled_by.is_empty()
    }
}

/// Everything the probes collected for one evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub sysctl: BTreeMap<String, SysctlFact>,
    pub sshd: Option<Probed<SshdFact>>,
    /// Keyed by the policy's path; content is present when any rule asked for it.
    pub files: BTreeMap<String, Probed<FileFact>>,
    pub accounts: Option<AccountsFact>,
    pub packages: Option<Probed<PackagesFact>>,
    pub services: BTreeMap<String, Probed<ServiceFact>>,
    pub listening: Option<Probed<Live<ListeningFact>>>,
    pub firewall: Option<Probed<Live<FirewallFact>>>,
    #[serde(default)]
    pub patches: Option<Probed<PatchesFact>>,
    #[serde(default)]
    pub reboot: Option<Probed<RebootFact>>,
    #[serde(default)]
    pub processes: Option<Probed<Live<ProcessesFact>>>,
    /// Keyed by the policy's path.
    #[serde(default)]
    pub certificates: BTreeMap<String, Probed<CertificateFact>>,
}
