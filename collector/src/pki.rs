//! The small PKI of `hardend-collector pki`: a CA, and the collector, agent
//! and console certificates it signs, written as PEM files with private keys
//! created mode 0600.
//!
//! The kind of a leaf certificate is carried in its subject as an
//! organizational unit (`OU=hardend-collector`, `OU=hardend-agent` or
//! `OU=hardend-console`, always with `O=hardend`), and its NAME is the
//! subject's common name and a subject alternative name. The extended key
//! usage separates servers (collector: serverAuth) from clients (agent and
//! console: clientAuth), and the OU separates the two kinds of client, so an
//! agent certificate cannot be used as a console's and the other way round.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The organization every hardend certificate names in its subject.
pub const ORGANIZATION: &str = "hardend";

/// The validity of a new CA, in days (ten years).
pub const CA_DAYS: u32 = 3650;

/// The default validity of a leaf certificate, in days (one year).
pub const LEAF_DAYS: u32 = 365;

/// The longest validity `issue_for_days` accepts, in days (the CA's own).
pub const MAX_DAYS: u32 = CA_DAYS;

/// How far back a new certificate's validity starts, so hosts whose clocks
/// run a little behind the issuer's accept it at once.
const BACKDATE: Duration = Duration::hours(1);

/// The longest NAME accepted (the longest DNS name).
const MAX_NAME_LEN: usize = 253;

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum CertKind {
    /// The collector's server certificate (serverAuth; NAME is its DNS name or IP).
    Collector,
    /// An agent's client certificate (clientAuth; NAME is the host identity).
    Agent,
    /// An operator's console certificate (clientAuth; NAME is the operator).
    Console,
}

impl CertKind {
    /// The kind's word: `collector`, `agent` or `console`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Collector => "collector",
            CertKind::Agent => "agent",
            CertKind::Console => "console",
        }
    }

    /// The subject organizational unit that marks a certificate of this kind.
    pub fn organizational_unit(self) -> &'static str {
        match self {
            CertKind::Collector => "hardend-collector",
            CertKind::Agent => "hardend-agent",
            CertKind::Console => "hardend-console",
        }
    }

    /// The kind an organizational unit marks, if it is one of ours.
    pub fn from_organizational_unit(ou: &str) -> Option<CertKind> {
        [CertKind::Collector, CertKind::Agent, CertKind::Console]
            .into_iter()
            .find(|k| k.organizational_unit() == ou)
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertKind {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<CertKind, PkiError> {
        match s {
            "collector" => Ok(CertKind::Collector),
            "agent" => Ok(CertKind::Agent),
            "console" => Ok(CertKind::Console),
            other => Err(PkiError::UnknownKind(other.to_string())),
        }
    }
}

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("unknown certificate kind {0:?} (expected collector, agent or console)")]
    UnknownKind(String),
    #[error("invalid certificate name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid validity of {days} days: it must be between 1 and {MAX_DAYS}")]
    InvalidDays { days: u32 },
    #[error("a CA already exists at {} (refusing to overwrite it)", path.display())]
    CaExists { path: PathBuf },
    #[error(
        "{} already exists (refusing to overwrite it; remove {}.pem and {}.key to issue again)",
        path.display(), name, name
    )]
    LeafExists { path: PathBuf, name: String },
    #[error("cannot create the directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source} (run `hardend-collector pki init` first?)", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a usable CA file: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("cannot generate the {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
}

/// The paths of the CA's certificate and key in `dir`.
pub fn ca_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.pem"), dir.join("ca.key"))
}

/// The paths of leaf NAME's certificate and key in `dir`.
pub fn leaf_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// Creates a CA in `dir` (created mode 0700 when missing): `dir/ca.pem` and
/// `dir/ca.key` (mode 0600), valid for ten years. Refuses when either file
/// already exists.
pub fn init(dir: &Path) -> Result<(), PkiError> {
    let (cert_path, key_path) = ca_paths(dir);
    for path in [&cert_path, &key_path] {
        if path.symlink_metadata().is_ok() {
            return Err(PkiError::CaExists { path: path.clone() });
        }
    }
    create_dir(dir)?;

    let key = KeyPair::generate().map_err(|source| PkiError::Generate {
        what: "CA key",
        source,
    })?;
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    // A CA name of its own (from its public key) tells two deployments'
    // CAs apart in error messages and in `openssl x509 -text`.
    let tag: String = key
        .public_key_raw()
        .iter()
        .skip(1)
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    dn.push(DnType::CommonName, format!("hardend CA {tag}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(CA_DAYS));
    let cert = params
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: "CA certificate",
            source,
        })?;

    write_pair(
        &cert_path,
        cert.pem().as_bytes(),
        &key_path,
        key.serialize_pem().as_bytes(),
    )
    .map_err(|e| match e {
        WriteFailure::Exists(path) => PkiError::CaExists { path },
        WriteFailure::Io(e) => e,
    })
}

/// Issues a certificate of `kind` for `name`, valid for one year, signed by
/// the CA in `dir`: writes `dir/NAME.pem` and `dir/NAME.key` (mode 0600).
pub fn issue(dir: &Path, kind: CertKind, name: &str) -> Result<(), PkiError> {
    issue_for_days(dir, kind, name, LEAF_DAYS)
}

/// As [`issue`], valid for `days` days (never past the CA's own expiry).
pub fn issue_for_days(dir: &Path, kind: CertKind, name: &str, days: u32) -> Result<(), PkiError> {
    validate_name(name)?;
    if days == 0 || days > MAX_DAYS {
        return Err(PkiError::InvalidDays { days });
    }
    let (cert_path, key_path) = leaf_paths(dir, name);
    for path in [&cert_path, &key_path] {
        if path.symlink_metadata().is_ok() {
            return Err(PkiError::LeafExists {
                path: path.clone(),
                name: name.to_string(),
            });
        }
    }
    let ca = load_ca(dir)?;

    let key = KeyPair::generate().map_err(|source| PkiError::Generate {
        what: "key",
        source,
    })?;
    let params = leaf_params(kind, name, days, ca.not_after)?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(|source| PkiError::Generate {
            what: "certificate",
            source,
        })?;

    write_pair(
        &cert_path,
        cert.pem().as_bytes(),
        &key_path,
        key.serialize_pem().as_bytes(),
    )
    .map_err(|e| match e {
        WriteFailure::Exists(path) => PkiError::LeafExists {
            path,
            name: name.to_string(),
        },
        WriteFailure::Io(e) => e,
    })
}

/// Checks that `name` can be a certificate name and a file name: an IP
/// address, or a DNS-like name of dot-separated labels made of letters,
/// digits, `-` and `_`, none empty or starting or ending with `-`.
pub fn validate_name(name: &str) -> Result<(), PkiError> {
    let invalid = |reason| PkiError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("it is longer than 253 characters"));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if name.contains('/') || name.contains("..") {
        return Err(invalid("it may not contain `/` or `..`"));
    }
    if name.eq_ignore_ascii_case("ca") {
        return Err(invalid("`ca` is the CA's own file name"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid("it has an empty label"));
        }
        if label.len() > 63 {
            return Err(invalid("a label is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with `-`"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "only letters, digits, `-`, `_` and `.` are allowed (or an IP address)",
            ));
        }
    }
    Ok(())
}

/// The parameters of a leaf certificate of `kind` for `name`.
fn leaf_params(
    kind: CertKind,
    name: &str,
    days: u32,
    ca_not_after: OffsetDateTime,
) -> Result<CertificateParams, PkiError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::OrganizationalUnitName, kind.organizational_unit());
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let san = match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.try_into().map_err(|source| PkiError::Generate {
            what: "subject alternative name",
            source,
        })?),
    };
    params.subject_alt_names = vec![san];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match kind {
        CertKind::Collector => ExtendedKeyUsagePurpose::ServerAuth,
        CertKind::Agent | CertKind::Console => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = (now + Duration::days(i64::from(days))).min(ca_not_after);
    Ok(params)
}

/// The CA of a directory, ready to sign.
struct LoadedCa {
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
}

/// Reads `dir/ca.pem` and `dir/ca.key`, and checks that they belong together.
fn load_ca(dir: &Path) -> Result<LoadedCa, PkiError> {
    let (cert_path, key_path) = ca_paths(dir);
    let cert_pem = read_text(&cert_path)?;
    let key_pem = read_text(&key_path)?;
    let bad = |path: &Path, reason: String| PkiError::BadCa {
        path: path.to_path_buf(),
        reason,
    };
    let key = KeyPair::from_pem(&key_pem).map_err(|e| bad(&key_path, e.to_string()))?;

    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| bad(&cert_path, format!("no PEM certificate ({e})")))?;
    let x509 = pem
        .parse_x509()
        .map_err(|e| bad(&cert_path, format!("not an X.509 certificate ({e})")))?;
    if !x509.is_ca() {
        return Err(bad(&cert_path, "not a CA certificate".to_string()));
    }
    if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(bad(
            &key_path,
            format!("this key does not belong to {}", cert_path.display()),
        ));
    }
    let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())
        .map_err(|e| bad(&cert_path, format!("its expiry is out of range ({e})")))?;
    let issuer =
        Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| bad(&cert_path, e.to_string()))?;
    Ok(LoadedCa { issuer, not_after })
}

fn read_text(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `dir` and its missing parents, new ones mode 0700.
fn create_dir(dir: &Path) -> Result<(), PkiError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PkiError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Why writing a certificate and key pair failed.
enum WriteFailure {
    /// One of the files appeared in the meantime.
    Exists(PathBuf),
    Io(PkiError),
}

/// Writes the key (created 0600) and then the certificate (created 0644),
/// neither replacing an existing file. When the certificate cannot be
/// written the new key is removed again, so a retry starts clean.
fn write_pair(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<(), WriteFailure> {
    write_new(key_path, key, 0o600)?;
    if let Err(e) = write_new(cert_path, cert, 0o644) {
        // Best effort: the error that matters is the certificate's.
        let _ = std::fs::remove_file(key_path);
        return Err(e);
    }
    Ok(())
}

/// Creates `path` with `mode` (never an existing file, never a chmod
/// afterwards) and writes `contents` durably.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteFailure> {
    let io = |source| {
        WriteFailure::Io(PkiError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                WriteFailure::Exists(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}
