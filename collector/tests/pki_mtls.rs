//! Mutual TLS over loopback with certificates from `pki`: a tiny tonic
//! server (grpc health behind an interceptor that reads `peer_identity`)
//! built with `server_tls`, and clients built with `client_tls`. Clients
//! from another CA, without a certificate, or with a server certificate are
//! refused in the handshake; agent and console certificates are told apart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hardend_collector::pki::{self, CertKind};
use hardend_collector::tls::{self, Identity, TlsError, client_tls, peer_identity, server_tls};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A CA directory with a collector certificate for 127.0.0.1, an agent
/// `web-1` and a console `alice`.
fn pki_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path()).unwrap();
    pki::issue(dir.path(), CertKind::Collector, "127.0.0.1").unwrap();
    pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap();
    pki::issue(dir.path(), CertKind::Console, "alice").unwrap();
    dir
}

fn files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// A running test server: its port and the identities it has seen.
struct TestServer {
    port: u16,
    seen: Arc<Mutex<Vec<Identity>>>,
}

/// Serves grpc health over mTLS on 127.0.0.1 with the collector
/// certificate of `dir`; only console identities get an answer, as the
/// collector's Console service does.
async fn serve(dir: &Path) -> TestServer {
    let (cert, key) = files(dir, "127.0.0.1");
    let config = server_tls(&dir.join("ca.pem"), &cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let guarded = InterceptedService::new(health, move |req: tonic::Request<()>| {
        let id = peer_identity(&req)?;
        record.lock().unwrap().push(id.clone());
        if id.kind == CertKind::Console {
            Ok(req)
        } else {
            Err(tonic::Status::permission_denied(format!(
                "a {} certificate may not use the console",
                id.kind
            )))
        }
    });
    let router = Server::builder()
        .tls_config(config)
        .unwrap()
        .add_service(guarded);
    tokio::spawn(async move {
        // The server lives until the test's runtime ends.
        let _ = router
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    TestServer { port, seen }
}

/// One health check over a fresh connection with `config`.
async fn check(port: u16, config: ClientTlsConfig) -> Result<ServingStatus, String> {
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(config)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    Ok(answer.into_inner().status())
}

fn as_client(dir: &Path, name: &str) -> ClientTlsConfig {
    let (cert, key) = files(dir, name);
    client_tls(&dir.join("ca.pem"), &cert, &key, None).unwrap()
}

#[tokio::test]
async fn a_console_certificate_is_served_and_identified() {
    let dir = pki_dir();
    let server = serve(dir.path()).await;
    let status = check(server.port, as_client(dir.path(), "alice")).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
    assert_eq!(
        *server.seen.lock().unwrap(),
        [Identity {
            kind: CertKind::Console,
            name: "alice".to_string()
        }]
    );
}

#[tokio::test]
async fn agent_and_console_certificates_are_told_apart() {
    let dir = pki_dir();
    let server = serve(dir.path()).await;
    let agent = check(server.port, as_client(dir.path(), "web-1")).await;
    let err = agent.unwrap_err();
    assert!(err.starts_with("PermissionDenied"), "{err}");
    let console = check(server.port, as_client(dir.path(), "alice")).await;
    assert_eq!(console, Ok(ServingStatus::Serving));
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            Identity {
                kind: CertKind::Agent,
                name: "web-1".to_string()
            },
            Identity {
                kind: CertKind::Console,
                name: "alice".to_string()
            }
        ]
    );
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let dir = pki_dir();
    let other = pki_dir();
    let server = serve(dir.path()).await;
    // The client trusts the right CA for the server but presents a console
    // certificate that another CA signed.
    let (cert, key) = files(other.path(), "alice");
    let config = client_tls(&dir.path().join("ca.pem"), &cert, &key, None).unwrap();
    let refused = check(server.port, config).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(server.seen.lock().unwrap().is_empty());
    // The server is unharmed.
    let status = check(server.port, as_client(dir.path(), "alice")).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let dir = pki_dir();
    let server = serve(dir.path()).await;
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    let refused = check(server.port, config).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(server.seen.lock().unwrap().is_empty());
    let status = check(server.port, as_client(dir.path(), "alice")).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn a_server_certificate_is_no_client_certificate() {
    let dir = pki_dir();
    let server = serve(dir.path()).await;
    // The collector certificate has serverAuth only.
    let refused = check(server.port, as_client(dir.path(), "127.0.0.1")).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(server.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_client_refuses_a_collector_of_another_ca() {
    let dir = pki_dir();
    let other = pki_dir();
    let server = serve(dir.path()).await;
    let (cert, key) = files(other.path(), "alice");
    let config = client_tls(&other.path().join("ca.pem"), &cert, &key, None).unwrap();
    let refused = check(server.port, config).await;
    let err = refused.unwrap_err();
    assert!(err.contains("InvalidCertificate(UnknownIssuer)"), "{err}");
}

#[tokio::test]
async fn the_client_checks_the_collector_name() {
    let dir = pki_dir();
    let server = serve(dir.path()).await;
    let (cert, key) = files(dir.path(), "alice");
    let wrong = client_tls(
        &dir.path().join("ca.pem"),
        &cert,
        &key,
        Some("collector.example"),
    )
    .unwrap();
    let refused = check(server.port, wrong).await;
    let err = refused.unwrap_err();
    assert!(err.contains("InvalidCertificate(NotValidForName"), "{err}");
    let right = client_tls(&dir.path().join("ca.pem"), &cert, &key, Some("127.0.0.1")).unwrap();
    assert_eq!(check(server.port, right).await, Ok(ServingStatus::Serving));
}

#[test]
fn a_request_without_a_tls_connection_is_unauthenticated() {
    let status = peer_identity(&tonic::Request::new(())).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

#[test]
fn tls_configs_name_the_file_that_is_wrong() {
    let dir = pki_dir();
    let p = dir.path();
    let ca = p.join("ca.pem");
    let (cert, key) = files(p, "127.0.0.1");

    let missing = p.join("missing.pem");
    let err = server_tls(&ca, &missing, &key).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let garbage = p.join("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let err = server_tls(&garbage, &cert, &key).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    assert!(err.to_string().contains("garbage.pem"), "{err}");

    let err = client_tls(&ca, &cert, &garbage, None).unwrap_err();
    assert!(matches!(err, TlsError::BadKey { .. }), "{err}");
    assert!(err.to_string().contains("garbage.pem"), "{err}");

    // The key of another certificate.
    let (_, alice_key) = files(p, "alice");
    let err = server_tls(&ca, &cert, &alice_key).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("alice.key"), "{err}");

    // A key where the certificate belongs.
    let err = client_tls(&ca, &key, &key, None).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
}

#[test]
fn a_certificate_file_names_its_identity() {
    let dir = pki_dir();
    let id = tls::cert_file_identity(&dir.path().join("web-1.pem")).unwrap();
    assert_eq!((id.kind, id.name.as_str()), (CertKind::Agent, "web-1"));
    let err = tls::cert_file_identity(&dir.path().join("web-1.key")).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
}
