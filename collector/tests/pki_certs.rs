//! `hardend-collector pki`: the files `init` and `issue` write, their modes,
//! what the certificates say (names, key usages, kind), and the names and
//! situations they refuse.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hardend_collector::pki::{self, CertKind, PkiError};
use hardend_collector::tls::{IdentityError, identity_from_der};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::X509Certificate;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn der_of(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap();
    let (_, pem) = parse_x509_pem(&text).unwrap();
    pem.contents
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .expect("a SAN extension")
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("dns:{d}"),
            GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
            GeneralName::URI(u) => format!("uri:{u}"),
            other => format!("other:{other:?}"),
        })
        .collect()
}

fn eku(cert: &X509Certificate<'_>) -> (bool, bool) {
    let e = cert.extended_key_usage().unwrap().expect("an EKU").value;
    (e.server_auth, e.client_auth)
}

fn ou(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject()
        .iter_organizational_unit()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn validity_days(cert: &X509Certificate<'_>) -> i64 {
    let v = cert.validity();
    (v.not_after.timestamp() - v.not_before.timestamp()) / 86_400
}

fn ca_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path()).unwrap();
    dir
}

#[test]
fn init_writes_a_ca_with_its_key_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    pki::init(&dir).unwrap();
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert_eq!(mode(&dir), 0o700, "a new PKI directory is private");
    let der = der_of(&dir.join("ca.pem"));
    let ca = parse(&der);
    assert!(ca.is_ca());
    assert_eq!(ca.subject(), ca.issuer(), "self-signed");
    ca.verify_signature(None).unwrap();
    let days = validity_days(&ca);
    assert!((3650..=3651).contains(&days), "CA valid {days} days");
    let key = std::fs::read_to_string(dir.join("ca.key")).unwrap();
    assert!(key.contains("PRIVATE KEY"), "{key}");
}

#[test]
fn init_refuses_to_overwrite_an_existing_ca() {
    let dir = ca_dir();
    let cert = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let key = std::fs::read(dir.path().join("ca.key")).unwrap();
    let err = pki::init(dir.path()).unwrap_err();
    assert!(matches!(err, PkiError::CaExists { .. }), "{err}");
    assert!(err.to_string().contains("ca.pem"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), cert);
    assert_eq!(std::fs::read(dir.path().join("ca.key")).unwrap(), key);
}

#[test]
fn init_refuses_when_only_the_ca_key_is_left() {
    let dir = ca_dir();
    std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
    let err = pki::init(dir.path()).unwrap_err();
    assert!(matches!(err, PkiError::CaExists { .. }), "{err}");
    assert!(!dir.path().join("ca.pem").exists());
}

#[test]
fn collector_certificate_names_its_dns_name_for_server_auth() {
    let dir = ca_dir();
    pki::issue(dir.path(), CertKind::Collector, "collector.example").unwrap();
    assert_eq!(mode(&dir.path().join("collector.example.key")), 0o600);
    let ca_der = der_of(&dir.path().join("ca.pem"));
    let ca = parse(&ca_der);
    let der = der_of(&dir.path().join("collector.example.pem"));
    let cert = parse(&der);
    assert_eq!(names(&cert), ["dns:collector.example"]);
    assert_eq!(eku(&cert), (true, false));
    assert_eq!(ou(&cert), ["hardend-collector"]);
    assert!(!cert.is_ca());
    assert_eq!(cert.issuer(), ca.subject());
    cert.verify_signature(Some(ca.public_key())).unwrap();
    let days = validity_days(&cert);
    assert!((365..=366).contains(&days), "leaf valid {days} days");
}

#[test]
fn collector_certificate_for_an_ip_carries_an_ip_san() {
    let dir = ca_dir();
    pki::issue(dir.path(), CertKind::Collector, "127.0.0.1").unwrap();
    pki::issue(dir.path(), CertKind::Collector, "::1").unwrap();
    let v4 = der_of(&dir.path().join("127.0.0.1.pem"));
    assert_eq!(names(&parse(&v4)), ["ip:[127, 0, 0, 1]"]);
    let v6 = der_of(&dir.path().join("::1.pem"));
    assert_eq!(
        names(&parse(&v6)),
        ["ip:[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]"]
    );
}

#[test]
fn agent_certificate_carries_the_host_identity_for_client_auth() {
    let dir = ca_dir();
    pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap();
    assert_eq!(mode(&dir.path().join("web-1.key")), 0o600);
    let der = der_of(&dir.path().join("web-1.pem"));
    let cert = parse(&der);
    assert_eq!(names(&cert), ["dns:web-1"]);
    assert_eq!(eku(&cert), (false, true));
    assert_eq!(ou(&cert), ["hardend-agent"]);
    let id = identity_from_der(&der).unwrap();
    assert_eq!((id.kind, id.name.as_str()), (CertKind::Agent, "web-1"));
}

#[test]
fn console_certificate_carries_the_operator_for_client_auth() {
    let dir = ca_dir();
    pki::issue(dir.path(), CertKind::Console, "alice").unwrap();
    let der = der_of(&dir.path().join("alice.pem"));
    let cert = parse(&der);
    assert_eq!(eku(&cert), (false, true));
    assert_eq!(ou(&cert), ["hardend-console"]);
    let id = identity_from_der(&der).unwrap();
    assert_eq!((id.kind, id.name.as_str()), (CertKind::Console, "alice"));
}

#[test]
fn the_kind_tells_agent_and_console_certificates_apart() {
    let dir = ca_dir();
    pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap();
    pki::issue(dir.path(), CertKind::Console, "web-1.ops").unwrap();
    pki::issue(dir.path(), CertKind::Collector, "collector").unwrap();
    let kinds: Vec<CertKind> = ["web-1", "web-1.ops", "collector"]
        .iter()
        .map(|n| {
            identity_from_der(&der_of(&dir.path().join(format!("{n}.pem"))))
                .unwrap()
                .kind
        })
        .collect();
    assert_eq!(
        kinds,
        [CertKind::Agent, CertKind::Console, CertKind::Collector]
    );
}

#[test]
fn a_certificate_without_a_hardend_kind_names_no_identity() {
    let key = rcgen::KeyPair::generate().unwrap();
    let foreign = rcgen::CertificateParams::new(vec!["web-1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert_eq!(
        identity_from_der(foreign.der()),
        Err(IdentityError::NotOurs)
    );

    let mut params = rcgen::CertificateParams::new(vec!["web-1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "hardend");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "hardend-root");
    let no_kind = params.self_signed(&key).unwrap();
    assert_eq!(identity_from_der(no_kind.der()), Err(IdentityError::NoKind));

    assert!(matches!(
        identity_from_der(b"not a certificate"),
        Err(IdentityError::Parse(_))
    ));
}

#[test]
fn issue_refuses_to_overwrite_a_certificate() {
    let dir = ca_dir();
    pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap();
    let before = std::fs::read(dir.path().join("web-1.pem")).unwrap();
    let err = pki::issue(dir.path(), CertKind::Console, "web-1").unwrap_err();
    assert!(matches!(err, PkiError::LeafExists { .. }), "{err}");
    assert_eq!(std::fs::read(dir.path().join("web-1.pem")).unwrap(), before);

    std::fs::remove_file(dir.path().join("web-1.pem")).unwrap();
    let err = pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap_err();
    assert!(err.to_string().contains("web-1.key"), "{err}");
}

#[test]
fn issue_without_a_ca_says_which_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap_err();
    assert!(matches!(err, PkiError::Read { .. }), "{err}");
    assert!(err.to_string().contains("ca.pem"), "{err}");
    assert!(!dir.path().join("web-1.key").exists());
    assert!(!dir.path().join("web-1.pem").exists());
}

#[test]
fn issue_refuses_a_ca_key_that_is_not_the_cas() {
    let dir = ca_dir();
    let other = ca_dir();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    std::fs::copy(other.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
    let err = pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap_err();
    assert!(matches!(err, PkiError::BadCa { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");
}

#[test]
fn issue_refuses_a_leaf_as_the_ca() {
    let dir = ca_dir();
    pki::issue(dir.path(), CertKind::Collector, "collector").unwrap();
    std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    std::fs::rename(dir.path().join("collector.pem"), dir.path().join("ca.pem")).unwrap();
    std::fs::rename(dir.path().join("collector.key"), dir.path().join("ca.key")).unwrap();
    let err = pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap_err();
    assert!(err.to_string().contains("not a CA certificate"), "{err}");
}

#[test]
fn names_that_are_not_host_or_operator_names_are_refused() {
    let dir = ca_dir();
    let long = "a".repeat(254);
    let long_label = format!("{}.example", "b".repeat(64));
    for name in [
        "",
        "..",
        "../evil",
        "a/b",
        "/etc/passwd",
        "a..b",
        ".hidden",
        "trailing.",
        "-x",
        "x-",
        "two words",
        "tab\tname",
        "nul\0name",
        "émile",
        "ca",
        "CA",
        "star*",
        long.as_str(),
        long_label.as_str(),
    ] {
        let err = pki::issue(dir.path(), CertKind::Agent, name).unwrap_err();
        assert!(
            matches!(err, PkiError::InvalidName { .. }),
            "{name:?}: {err}"
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["ca.key", "ca.pem"]);
}

#[test]
fn host_names_and_addresses_are_accepted() {
    for name in ["web-1", "web_1.dc-2.example", "10.0.0.7", "fe80::1", "a"] {
        pki::validate_name(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
}

#[test]
fn issue_for_days_sets_the_validity_and_refuses_nonsense() {
    let dir = ca_dir();
    pki::issue_for_days(dir.path(), CertKind::Agent, "short", 30).unwrap();
    let der = der_of(&dir.path().join("short.pem"));
    let days = validity_days(&parse(&der));
    assert!((30..=31).contains(&days), "{days}");
    for days in [0, pki::MAX_DAYS + 1] {
        let err = pki::issue_for_days(dir.path(), CertKind::Agent, "x", days).unwrap_err();
        assert!(matches!(err, PkiError::InvalidDays { .. }), "{err}");
    }
}

#[test]
fn kinds_parse_from_their_words() {
    for kind in [CertKind::Collector, CertKind::Agent, CertKind::Console] {
        assert_eq!(kind.as_str().parse::<CertKind>().unwrap(), kind);
    }
    assert!("root".parse::<CertKind>().is_err());
}
