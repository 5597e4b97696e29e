//! Mutual TLS for the collector and its clients: tonic server and client
//! configurations built from PEM files (every unusable file named before any
//! handshake), and the peer identity (kind and name) read from a verified
//! client certificate.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity as TonicIdentity, ServerTlsConfig};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::pki::{CertKind, ORGANIZATION};

/// Why a TLS configuration or an identity could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} is not a usable PEM certificate file: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{} holds no usable PEM private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the key in {} does not belong to the certificate in {}: {reason}", key.display(), cert.display())]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("{} is not a hardend certificate: {reason}", path.display())]
    NotHardend { path: PathBuf, reason: String },
}

/// Who is at the other end of a connection, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: CertKind,
    /// The certificate's common name: the host identity of an agent, the
    /// operator of a console, the DNS name or IP of a collector.
    pub name: String,
}

/// Why a certificate does not name a hardend identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the certificate cannot be parsed: {0}")]
    Parse(String),
    #[error("the certificate's subject has no O={ORGANIZATION}")]
    NotOurs,
    #[error(
        "the certificate's subject has no hardend kind (OU=hardend-agent, -console or -collector)"
    )]
    NoKind,
    #[error("the certificate's subject names more than one hardend kind")]
    SeveralKinds,
    #[error("the certificate's subject has no single common name")]
    NoName,
}

/// The server side of mutual TLS: the collector's certificate and key, and
/// the CA that every client certificate must chain to (a client without a
/// certificate is refused in the handshake).
pub fn server_tls(ca: &Path, cert: &Path, key: &Path) -> Result<ServerTlsConfig, TlsError> {
    install_crypto_provider();
    let ca_pem = read_certificates(ca)?;
    let (cert_pem, key_pem) = read_pair(cert, key)?;
    Ok(ServerTlsConfig::new()
        .identity(TonicIdentity::from_pem(cert_pem, key_pem))
        .client_ca_root(Certificate::from_pem(ca_pem)))
}

/// The client side of mutual TLS: the CA that the server's certificate must
/// chain to, this client's certificate and key, and the name to check the
/// server's certificate against (default: the host of the URL dialled).
pub fn client_tls(
    ca: &Path,
    cert: &Path,
    key: &Path,
    domain: Option<&str>,
) -> Result<ClientTlsConfig, TlsError> {
    install_crypto_provider();
    let ca_pem = read_certificates(ca)?;
    let (cert_pem, key_pem) = read_pair(cert, key)?;
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(TonicIdentity::from_pem(cert_pem, key_pem));
    if let Some(domain) = domain {
        config = config.domain_name(domain);
    }
    Ok(config)
}

/// The identity of the client that made `req`, from the leaf of its verified
/// certificate chain. `Status::unauthenticated` when the connection carries
/// no certificate or the certificate names no hardend identity; whether the
/// kind is the right one for the call is the caller's decision.
pub fn peer_identity<T>(req: &tonic::Request<T>) -> Result<Identity, tonic::Status> {
    let certs = req
        .peer_certs()
        .ok_or_else(|| tonic::Status::unauthenticated("no client certificate"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| tonic::Status::unauthenticated("no client certificate"))?;
    identity_from_der(leaf.as_ref())
        .map_err(|e| tonic::Status::unauthenticated(format!("client certificate: {e}")))
}

/// The hardend identity a DER certificate names: its kind from the subject's
/// `OU=hardend-KIND` (with `O=hardend`), its name from the common name.
pub fn identity_from_der(der: &[u8]) -> Result<Identity, IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Parse(e.to_string()))?;
    let subject = cert.subject();
    if !subject
        .iter_organization()
        .any(|o| o.as_str().is_ok_and(|s| s == ORGANIZATION))
    {
        return Err(IdentityError::NotOurs);
    }
    let mut kinds = subject
        .iter_organizational_unit()
        .filter_map(|ou| ou.as_str().ok())
        .filter_map(CertKind::from_organizational_unit);
    let kind = kinds.next().ok_or(IdentityError::NoKind)?;
    if kinds.any(|other| other != kind) {
        return Err(IdentityError::SeveralKinds);
    }
    let mut names = subject.iter_common_name();
    let name = match (names.next(), names.next()) {
        (Some(cn), None) => cn.as_str().map_err(|_| IdentityError::NoName)?,
        _ => return Err(IdentityError::NoName),
    };
    if name.is_empty() {
        return Err(IdentityError::NoName);
    }
    Ok(Identity {
        kind,
        name: name.to_string(),
    })
}

/// The hardend identity of the first certificate in a PEM file (so a
/// program can say early that it was given the wrong kind of certificate).
pub fn cert_file_identity(path: &Path) -> Result<Identity, TlsError> {
    let pem = read(path)?;
    let first = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| TlsError::NoCertificate {
            path: path.to_path_buf(),
        })?
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    identity_from_der(first.as_ref()).map_err(|e| TlsError::NotHardend {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Makes ring rustls' process-wide crypto provider unless one is already
/// installed, so tonic's config builders never have to choose between two.
pub fn install_crypto_provider() {
    // An error only says that a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a PEM file that must hold at least one well-formed certificate.
fn read_certificates(path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(path)?;
    parse_certificates(path, &pem)?;
    Ok(pem)
}

fn parse_certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    for der in &certs {
        if let Err(e) = X509Certificate::from_der(der.as_ref()) {
            return Err(TlsError::BadCertificate {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    }
    Ok(certs)
}

/// Reads a certificate chain and its private key, and checks that the key
/// belongs to the first certificate.
fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let cert_pem = read(cert)?;
    let chain = parse_certificates(cert, &cert_pem)?;
    let key_pem = read(key)?;
    let bad_key = |reason: String| TlsError::BadKey {
        path: key.to_path_buf(),
        reason,
    };
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad_key(e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| bad_key(e.to_string()))?;
    rustls::sign::CertifiedKey::new(chain, signer)
        .keys_match()
        .map_err(|e| TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok((cert_pem, key_pem))
}
