//! Validated policy types: what a loaded policy means, independent of YAML.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// How urgent a failing rule is. Ordered from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "critical" => Ok(Severity::Critical),
            "high" => Ok(Severity::High),
            "medium" => Ok(Severity::Medium),
            "low" => Ok(Severity::Low),
            other => Err(format!(
                "unknown severity `{other}` (critical, high, medium, low)"
            )),
        }
    }
}

/// Where something was written: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A loaded, validated policy file.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub title: String,
    pub version: String,
    pub description: Option<String>,
    pub rules: Vec<Rule>,
    /// The file it was loaded from.
    pub source: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub rationale: Option<String>,
    pub remediation: Option<String>,
    pub references: BTreeMap<String, String>,
    /// Applicability: when it does not hold, the rule is `not_applicable`.
    pub when: Option<Check>,
    pub check: Check,
    pub location: Location,
}

/// A check: one kind, or a combinator of checks.
#[derive(Debug, Clone)]
pub enum Check {
    Sysctl(SysctlCheck),
    SshdConfig(SshdCheck),
    File(FileCheck),
    Accounts(AccountsCheck),
    Package(PackageCheck),
    Service(ServiceCheck),
    Listening(ListeningCheck),
    Firewall(FirewallCheck),
    Patches(PatchesCheck),
    Reboot(RebootCheck),
    Processes(ProcessesCheck),
    Certificate(CertificateCheck),
    All(Vec<Check>),
    Any(Vec<Check>),
    Not(Box<Check>),
    /// `file_exists: PATH` (the `when` shorthand; also accepted in `check`).
    FileExists(String),
    /// `package_installed: NAME` (the `when` shorthand; also accepted in `check`).
    PackageInstalled(String),
}

/// A YAML scalar used in a comparison, kept as text (`1`, `"no"`, `yes`).
/// Numbers compare numerically when both sides parse as numbers.
pub type Scalar = String;

/// The comparisons of a scalar check. Every one that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub equals: Option<Scalar>,
    pub in_: Option<Vec<Scalar>>,
    pub not_in: Option<Vec<Scalar>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub matches: Option<Regex>,
    /// For list values (sshd `Ciphers`): every item must be present.
    pub contains: Option<Vec<Scalar>>,
    /// For list values: none of the items may be present.
    pub not_contains: Option<Vec<Scalar>>,
}

impl Comparison {
    pub fn is_empty(&self) -> bool {
        self.equals.is_none()
            && self.in_.is_none()
            && self.not_in.is_none()
            && self.min.is_none()
            && self.max.is_none()
            && self.matches.is_none()
            && self.contains.is_none()
            && self.not_contains.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct SysctlCheck {
    /// Dotted key, `net.ipv4.ip_forward`.
    pub key: String,
    pub compare: Comparison,
    /// The boot configuration must set the same (passing) value.
    pub persistent: bool,
}

#[derive(Debug, Clone)]
pub struct SshdCheck {
    /// Keyword as written; matched case-insensitively, aliases folded.
    pub keyword: String,
    pub compare: Comparison,
    /// Evaluate for this one connection instead of for every connection.
    pub connection: Option<SshdMatch>,
    /// Result when sshd is not installed under the root (default: not_applicable).
    pub if_not_installed: MissingSshd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSshd {
    #[default]
    NotApplicable,
    Pass,
    Fail,
}

#[derive(Debug, Clone, Default)]
pub struct SshdMatch {
    pub user: Option<String>,
    pub host: Option<String>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    pub lport: Option<u16>,
    pub rdomain: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FileCheck {
    pub path: String,
    pub exists: Option<bool>,
    /// No permission bit outside this mask may be set.
    pub mode_max: Option<u32>,
    /// The owner's name must be one of these.
    pub owner: Option<Vec<String>>,
    /// The group's name must be one of these.
    pub group: Option<Vec<String>>,
    /// Some line must match.
    pub contains: Option<Regex>,
    /// No line may match.
    pub not_contains: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountsRequirement {
    NoEmptyPasswords,
    UniqueUid0,
    NoDuplicateUids,
    NoDuplicateNames,
    StrongPasswordHashes,
    SystemAccountsNoLogin,
    PasswordMaxDays,
    PasswordMinDays,
    InactiveLockDays,
    ShadowPasswords,
}

#[derive(Debug, Clone)]
pub struct AccountsCheck {
    pub require: AccountsRequirement,
    /// `unique-uid0`: the accounts allowed to have uid 0 (default `[root]`).
    pub allow: Vec<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct PackageCheck {
    pub name: String,
    pub installed: bool,
    /// With `installed: true`: the installed version must be at least this,
    /// ordered by the rules of the database it came from (dpkg or rpm).
    pub min_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServiceCheck {
    pub unit: String,
    pub enabled: Option<bool>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ListeningCheck {
    /// `22/tcp`, `323/udp`.
    pub allowed: Vec<(u16, ListenProto)>,
    pub include_loopback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenProto {
    Tcp,
    Udp,
}

#[derive(Debug, Clone)]
pub struct FirewallCheck {
    /// The required input policy; only `drop` is defined (`reject` is accepted as deny too).
    pub input_default: String,
}

/// `patches: { security_updates_pending: N }`: at most N installed packages
/// have a newer version in a security suite of the apt lists.
#[derive(Debug, Clone)]
pub struct PatchesCheck {
    pub security_updates_pending: u32,
}

/// `reboot: { required: false }`: whether a reboot is pending.
#[derive(Debug, Clone)]
pub struct RebootCheck {
    pub required: bool,
}

/// `processes: { deleted_files_mapped: false }`: whether a live process maps
/// a deleted or replaced file.
#[derive(Debug, Clone)]
pub struct ProcessesCheck {
    pub deleted_files_mapped: bool,
    /// Only processes with one of these command names (`/proc/PID/comm`)
    /// count; empty means every process.
    pub commands: Vec<String>,
}

/// `certificate: { path, min_days_valid, self_signed, min_key_bits }`.
#[derive(Debug, Clone, Default)]
pub struct CertificateCheck {
    /// A PEM or DER file, or a directory of them.
    pub path: String,
    /// Every certificate must stay valid at least this many days from today
    /// (absent: it must not have expired).
    pub min_days_valid: Option<i64>,
    /// Whether the presented certificate (the first of each file) may, or
    /// must, be self-signed.
    pub self_signed: Option<bool>,
    /// The smallest key, in RSA-equivalent bits.
    pub min_key_bits: Option<u32>,
    /// Accept MD5 and SHA-1 signatures (default: they fail).
    pub allow_weak_signatures: bool,
}

/// A waiver from the agent's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    /// `policy-id/rule-id`.
    pub policy: String,
    pub rule: String,
    pub reason: String,
    pub expires: jiff::civil::Date,
    pub location: Location,
}
