//! X.509 certificates at a path below the root: a PEM or DER file (every
//! certificate of a chain in it), or every such file in a directory.
//!
//! The probe reports what each certificate says (subject, issuer, validity,
//! key, signature algorithm) and whether it is self-signed; the engine
//! decides against today's date, so the probe needs no clock. Parsed files
//! are cached by path, size, modification time and inode.

use std::io;
use std::sync::LazyLock;

use hardend_facts::posture::{CertificateFact, CertificateInfo};
use hardend_facts::{Evidence, ProbeFailure, Probed, Source};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::ParsedExtension;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use crate::patches::cache::{Stamp, StampCache};
use crate::{RootError, RootFs};

/// A directory with more files than this is refused: certificate
/// directories hold hundreds, not millions.
pub const MAX_DIR_FILES: usize = 10_000;

/// Errors of reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: RootError },
    #[error("{path}: more than {MAX_DIR_FILES} files")]
    TooManyFiles { path: String },
}

/// What one file held: its certificates, or why it held none.
type Parsed = Result<Vec<CertificateInfo>, String>;

static FILES: LazyLock<StampCache<Parsed>> = LazyLock::new(StampCache::default);

/// Reads the certificates at `path` (a file or a directory).
pub fn probe(fs: &RootFs, path: &str) -> Probed<CertificateFact> {
    probe_inner(fs, path).map_err(|e| ProbeFailure::new(e.to_string()))
}

/// The path itself (a file, or the directory whose files count).
pub fn sources(fs: &RootFs, path: &str) -> Vec<Source> {
    vec![Source::Path(fs.host_path(path))]
}

fn is_absent(e: &RootError) -> bool {
    matches!(e, RootError::Io { source, .. }
        if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
}

fn probe_inner(fs: &RootFs, path: &str) -> Result<CertificateFact, CertificateError> {
    let read_err = |source| CertificateError::Read {
        path: path.to_string(),
        source,
    };
    let mut fact = CertificateFact {
        path: path.to_string(),
        ..CertificateFact::default()
    };
    let md = match fs.metadata(path) {
        Ok(md) => md,
        Err(e) if is_absent(&e) => return Ok(fact),
        Err(e) => return Err(read_err(e)),
    };
    fact.exists = true;
    let files: Vec<String> = if md.is_dir() {
        let names = fs.read_dir(path).map_err(read_err)?;
        if names.len() > MAX_DIR_FILES {
            return Err(CertificateError::TooManyFiles {
                path: path.to_string(),
            });
        }
        let base = path.trim_end_matches('/');
        let mut seen = std::collections::HashSet::new();
        names
            .into_iter()
            .map(|n| format!("{base}/{n}"))
            // Hash links (`/etc/ssl/certs/5a3f0ff8.0`) repeat other files:
            // each file counts once, under its first name.
            .filter(|p| match fs.resolve(p) {
                Ok(real) => {
                    std::fs::metadata(&real).is_ok_and(|m| m.is_file()) && seen.insert(real)
                }
                Err(_) => false,
            })
            .collect()
    } else {
        vec![path.to_string()]
    };
    for file in files {
        let host = fs.resolve(&file).map_err(read_err)?;
        let stamp = match std::fs::metadata(&host) {
            Ok(m) => Stamp::of(&m),
            Err(source) if source.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(CertificateError::Read {
                    path: file,
                    source: RootError::Io {
                        path: host.display().to_string(),
                        source,
                    },
                });
            }
        };
        let parsed = FILES.get_or_load(&host, stamp, || {
            fs.read(&file).map(|data| parse_file(&data, &file))
        });
        match parsed {
            Ok(parsed) => match parsed.as_ref() {
                Ok(certs) => fact.certificates.extend(certs.iter().cloned()),
                Err(why) => fact.skipped.push(Evidence::text(&file, why.clone())),
            },
            Err(e) if is_absent(&e) => {}
            Err(e) => {
                return Err(CertificateError::Read {
                    path: file,
                    source: e,
                });
            }
        }
    }
    Ok(fact)
}

/// The certificates of one file: the `CERTIFICATE` blocks of a PEM file, or
/// the file as one DER certificate.
pub fn parse_file(data: &[u8], file: &str) -> Parsed {
    let looks_pem = memchr::memmem::find(data, b"-----BEGIN").is_some();
    let mut out = Vec::new();
    if looks_pem {
        let mut problems = Vec::new();
        for (i, block) in Pem::iter_from_buffer(data).enumerate() {
            match block {
                Ok(pem) if pem.label == "CERTIFICATE" || pem.label == "X509 CERTIFICATE" => {
                    match X509Certificate::from_der(&pem.contents) {
                        Ok((_, cert)) => out.push(describe(&cert, file, out.len())),
                        Err(e) => problems.push(format!("PEM block {}: {e}", i + 1)),
                    }
                }
                // Keys and other blocks may share the file; they are not ours.
                Ok(_) => {}
                Err(e) => {
                    problems.push(format!("PEM block {}: {e}", i + 1));
                    break;
                }
            }
        }
        if out.is_empty() {
            return Err(if problems.is_empty() {
                "no certificate in this file".to_string()
            } else {
                format!("no readable certificate: {}", problems.join("; "))
            });
        }
        return Ok(out);
    }
    match X509Certificate::from_der(data) {
        Ok((_, cert)) => Ok(vec![describe(&cert, file, 0)]),
        Err(_) => Err("neither PEM nor a DER certificate".to_string()),
    }
}

/// An OID as dotted text.
fn oid_text(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    oid.to_id_string()
}

/// The signature algorithm's name and hash, from its OID.
fn signature_name(oid: &str) -> (Option<&'static str>, Option<&'static str>) {
    match oid {
        "1.2.840.113549.1.1.2" => (Some("md2WithRSAEncryption"), Some("md2")),
        "1.2.840.113549.1.1.3" => (Some("md4WithRSAEncryption"), Some("md4")),
        "1.2.840.113549.1.1.4" => (Some("md5WithRSAEncryption"), Some("md5")),
        "1.2.840.113549.1.1.5" => (Some("sha1WithRSAEncryption"), Some("sha1")),
        "1.3.14.3.2.29" => (Some("sha1WithRSASignature"), Some("sha1")),
        "1.2.840.113549.1.1.14" => (Some("sha224WithRSAEncryption"), Some("sha224")),
        "1.2.840.113549.1.1.11" => (Some("sha256WithRSAEncryption"), Some("sha256")),
        "1.2.840.113549.1.1.12" => (Some("sha384WithRSAEncryption"), Some("sha384")),
        "1.2.840.113549.1.1.13" => (Some("sha512WithRSAEncryption"), Some("sha512")),
        "1.2.840.113549.1.1.10" => (Some("rsassaPss"), None),
        "1.2.840.10045.4.1" => (Some("ecdsa-with-SHA1"), Some("sha1")),
        "1.2.840.10045.4.3.1" => (Some("ecdsa-with-SHA224"), Some("sha224")),
        "1.2.840.10045.4.3.2" => (Some("ecdsa-with-SHA256"), Some("sha256")),
        "1.2.840.10045.4.3.3" => (Some("ecdsa-with-SHA384"), Some("sha384")),
        "1.2.840.10045.4.3.4" => (Some("ecdsa-with-SHA512"), Some("sha512")),
        "1.2.840.10040.4.3" => (Some("dsa-with-sha1"), Some("sha1")),
        "2.16.840.1.101.3.4.3.2" => (Some("dsa-with-sha256"), Some("sha256")),
        "1.3.101.112" => (Some("Ed25519"), None),
        "1.3.101.113" => (Some("Ed448"), None),
        _ => (None, None),
    }
}

/// A named curve's name and size in bits.
fn curve(oid: &str) -> Option<(&'static str, u32)> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => ("P-256", 256),
        "1.3.132.0.34" => ("P-384", 384),
        "1.3.132.0.35" => ("P-521", 521),
        "1.3.132.0.33" => ("P-224", 224),
        "1.2.840.10045.3.1.1" => ("P-192", 192),
        "1.3.132.0.10" => ("secp256k1", 256),
        "1.3.36.3.3.2.8.1.1.7" => ("brainpoolP256r1", 256),
        "1.3.36.3.3.2.8.1.1.11" => ("brainpoolP384r1", 384),
        "1.3.36.3.3.2.8.1.1.13" => ("brainpoolP512r1", 512),
        _ => return None,
    })
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> u32 {
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    let len = u32::try_from(bytes.len() - first).unwrap_or(u32::MAX / 8);
    let lead = bytes.get(first).map_or(0, |b| b.leading_zeros());
    len.saturating_mul(8).saturating_sub(lead)
}

/// The key identifier of an extension, when the certificate has it.
fn key_ids<'a>(cert: &'a X509Certificate<'a>) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
    let mut subject = None;
    let mut authority = None;
    for ext in cert.iter_extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => subject = Some(id.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority = aki.key_identifier.as_ref().map(|k| k.0);
            }
            _ => {}
        }
    }
    (subject, authority)
}

/// Issuer equals subject, and the signature verifies with the certificate's
/// own key. Where ring cannot verify (MD5 or SHA-1 with some keys, RSA keys
/// under 2048 bits, unusual curves) the key identifiers decide instead: a
/// certificate whose authority key id is absent or equals its subject key id
/// signed itself.
fn is_self_signed(cert: &X509Certificate<'_>, key_type: &str, key_bits: Option<u32>) -> bool {
    if cert.subject().as_raw() != cert.issuer().as_raw() {
        return false;
    }
    match cert.verify_signature(None) {
        Ok(()) => true,
        Err(e) => {
            let unverifiable = matches!(e, X509Error::SignatureUnsupportedAlgorithm)
                || (key_type == "RSA" && key_bits.is_some_and(|b| b < 2048));
            if !unverifiable {
                return false;
            }
            match key_ids(cert) {
                (_, None) => true,
                (Some(s), Some(a)) => s == a,
                (None, Some(_)) => false,
            }
        }
    }
}

fn describe(cert: &X509Certificate<'_>, file: &str, index: usize) -> CertificateInfo {
    let spki = cert.public_key();
    let key_oid = oid_text(&spki.algorithm.algorithm);
    let params_oid = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| oid_text(&o));
    let (key_type, key_bits, curve_name) = match key_oid.as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => {
            let bits = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(bit_length(rsa.modulus)),
                _ => None,
            };
            ("RSA".to_string(), bits, None)
        }
        "1.2.840.10045.2.1" => {
            let named = params_oid.as_deref().and_then(curve);
            let bits = named.map(|(_, b)| b).or_else(|| match spki.parsed() {
                Ok(key) => u32::try_from(key.key_size()).ok().filter(|b| *b > 0),
                Err(_) => None,
            });
            (
                "EC".to_string(),
                bits,
                named.map(|(n, _)| n.to_string()).or(params_oid.clone()),
            )
        }
        "1.3.101.112" => ("Ed25519".to_string(), Some(256), None),
        "1.3.101.113" => ("Ed448".to_string(), Some(456), None),
        "1.2.840.10040.4.1" => {
            // The DSA key size is that of the prime p in the parameters.
            let bits = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| dsa_prime_bits(p.data));
            ("DSA".to_string(), bits, None)
        }
        other => (other.to_string(), None, None),
    };
    let sig_oid = oid_text(&cert.signature_algorithm.algorithm);
    let (sig_name, sig_hash) = signature_name(&sig_oid);
    let self_signed = is_self_signed(cert, &key_type, key_bits);
    CertificateInfo {
        file: file.to_string(),
        index: u32::try_from(index).unwrap_or(u32::MAX),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        self_signed,
        key_type,
        key_bits,
        curve: curve_name,
        signature_algorithm: sig_name.map(str::to_string).unwrap_or(sig_oid),
        signature_hash: sig_hash.map(str::to_string),
    }
}

/// The bit length of `p` in DSA parameters (`SEQUENCE { p, q, g }`).
fn dsa_prime_bits(params: &[u8]) -> Option<u32> {
    let (_, p) = x509_parser::der_parser::der::parse_der_integer(params).ok()?;
    Some(bit_length(p.as_slice().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths_ignore_leading_zero_bytes() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01, 0x00]), 9);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[]), 0);
    }

    #[test]
    fn garbage_is_skipped_with_a_reason() {
        assert!(parse_file(b"not a certificate", "/x").is_err());
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = parse_file(pem, "/x").expect_err("an invalid certificate");
        assert!(err.contains("no readable certificate"), "{err}");
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            parse_file(key_only, "/x"),
            Err("no certificate in this file".to_string())
        );
    }
}
