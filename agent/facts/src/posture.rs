//! Patch posture and certificate facts: pending security updates, pending
//! reboots, processes still running deleted code, and certificates.

use serde::{Deserialize, Serialize};

use crate::{Evidence, PackageFormat};

/// Installed packages for which a security suite in the apt lists (dpkg
/// hosts) or a security advisory in dnf's cached `updateinfo` (rpm hosts)
/// offers a newer version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PatchesFact {
    /// The pending security updates, sorted by package name.
    pub pending: Vec<PendingUpdate>,
    /// The security sources that were read (root-relative): the
    /// `*_Packages` lists of security suites, or the `updateinfo` files.
    pub security_lists: Vec<String>,
    /// How many installed packages were compared.
    pub installed_count: usize,
    /// The package database the installed versions came from, which also
    /// says where security fixes are learnt of and how versions order.
    #[serde(default)]
    pub format: PackageFormat,
}

/// One installed package with a newer version in a security suite or
/// advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpdate {
    pub package: String,
    pub architecture: String,
    /// The installed version (dpkg status, or rpm's `[epoch:]version-release`).
    pub installed: String,
    /// The newest version the security suites or advisories offer.
    pub candidate: String,
    /// The suite (`bookworm-security`) or advisory (`RHSA-2024:1234`) that
    /// offers it.
    pub suite: String,
    /// The advisory's severity (`Important`), when it names one.
    #[serde(default)]
    pub severity: Option<String>,
    /// The candidate's stanza in its `*_Packages` list, or its `<package>`
    /// element in `updateinfo.xml` (the line of the decompressed text).
    pub evidence: Evidence,
}

/// Whether something installed only takes effect after a reboot.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RebootFact {
    /// Each reason a reboot is required: `/run/reboot-required`, or (live
    /// only) a running kernel older than the newest installed one. Empty
    /// when no reboot is needed.
    pub reasons: Vec<Evidence>,
    /// The running kernel's release (`/proc/sys/kernel/osrelease`), when live.
    pub running_kernel: Option<String>,
    /// The newest installed kernel of the running kernel's flavour.
    pub newest_kernel: Option<String>,
}

impl RebootFact {
    pub fn required(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Live processes that still map a file that was deleted or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessesFact {
    /// Every (process, file) pair, sorted by pid then file.
    pub deleted: Vec<DeletedMapping>,
    /// How many processes were examined.
    pub scanned: usize,
}

/// A process that runs code from a file that no longer exists under its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeletedMapping {
    pub pid: u32,
    /// The command name (`/proc/PID/comm`).
    pub command: String,
    /// The file as the kernel names it, without the ` (deleted)` suffix.
    pub file: String,
    /// True when the file is the process's executable (`/proc/PID/exe`).
    pub executable: bool,
}

/// The certificates found at a policy's `certificate.path`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertificateFact {
    /// The path as written in the policy.
    pub path: String,
    /// False when nothing exists at the path.
    pub exists: bool,
    /// Every certificate: all of them in a file (a chain), in file order; for a
    /// directory, those of each file in name order.
    pub certificates: Vec<CertificateInfo>,
    /// Files that held no certificate or could not be parsed, with why.
    pub skipped: Vec<Evidence>,
}

/// What one X.509 certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// The file it is in (root-relative).
    pub file: String,
    /// Its position in that file, from 0; 0 is the certificate a server presents.
    pub index: u32,
    pub subject: String,
    pub issuer: String,
    /// `notBefore` and `notAfter` as Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// Issuer equals subject and the signature verifies with its own key.
    pub self_signed: bool,
    /// `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`, or the key algorithm's OID.
    pub key_type: String,
    /// The key size in bits (RSA modulus, DSA prime, EC field size).
    pub key_bits: Option<u32>,
    /// The named curve of an EC key (`P-256`).
    pub curve: Option<String>,
    /// The signature algorithm's name (`sha256WithRSAEncryption`) or OID.
    pub signature_algorithm: String,
    /// The hash of the signature algorithm (`md5`, `sha1`, `sha256`, ...),
    /// when the algorithm names one.
    pub signature_hash: Option<String>,
}

impl CertificateInfo {
    /// The security strength of the key expressed in RSA-modulus bits
    /// (NIST SP 800-57 part 1 table 2): RSA and DSA keys as they are, EC and
    /// EdDSA keys by their equivalent. `None` when the strength is unknown.
    pub fn rsa_equivalent_bits(&self) -> Option<u32> {
        match self.key_type.as_str() {
            "RSA" | "DSA" => self.key_bits,
            "Ed25519" => Some(3072),
            "Ed448" => Some(7680),
            "EC" => match self.key_bits? {
                0..=159 => Some(512),
                160..=223 => Some(1024),
                224..=255 => Some(2048),
                256..=383 => Some(3072),
                384..=511 => Some(7680),
                _ => Some(15360),
            },
            _ => None,
        }
    }
}
