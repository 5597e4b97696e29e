//! The push task against a stand-in collector over mutual TLS (certificates
//! made by the openssl CLI): it says Hello with the host and last sequence
//! number, sends the queued messages in order, asks the core for a snapshot
//! after connecting, deletes from the outbox only what was acknowledged, and
//! after the collector drops a stream it reconnects and resends from the
//! first unacknowledged message.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardend_daemon::outbox::OutboxOptions;
use hardend_daemon::push::{PushOptions, SharedOutbox, run_push, snapshot_message};
use hardend_daemon::{AgentView, Command, Shared};
use hardend_proto as pb;
use hardend_proto::collector_server::{Collector, CollectorServer};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Process::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (install it: scripts/install-deps)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=push-test-ca",
        "-days",
        "2",
    ]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("agent", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext file");
        let mut req = vec!["req"];
        req.extend(ec);
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/CN={name}");
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

/// What the stand-in collector saw.
#[derive(Debug, Default)]
struct Seen {
    hellos: Vec<pb::Hello>,
    /// Each stream's messages, in arrival order: (seq, is snapshot).
    streams: Vec<Vec<(u64, bool)>>,
    /// Stored once per seq.
    stored: BTreeMap<u64, bool>,
}

#[derive(Clone)]
struct Stub {
    seen: Arc<Mutex<Seen>>,
    /// The first stream acknowledges this many messages, takes a few more
    /// without acknowledging them, then fails.
    first_stream_acks: usize,
}

fn seq_of(m: &pb::AgentMessage) -> Option<(u64, bool)> {
    match &m.body {
        Some(pb::agent_message::Body::Drift(d)) => Some((d.seq, false)),
        Some(pb::agent_message::Body::Snapshot(s)) => Some((s.seq, true)),
        _ => None,
    }
}

#[tonic::async_trait]
impl Collector for Stub {
    type ConnectStream = ReceiverStream<Result<pb::CollectorMessage, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await?.and_then(|m| m.body) {
            Some(pb::agent_message::Body::Hello(h)) => h,
            _ => return Err(Status::invalid_argument("Hello first")),
        };
        let stream_index = {
            let mut seen = self.seen.lock().expect("lock");
            seen.hellos.push(hello);
            seen.streams.push(Vec::new());
            seen.streams.len() - 1
        };
        let (tx, rx) = mpsc::channel(1024);
        let stub = self.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok(Some(message)) = inbound.message().await {
                let Some((seq, snapshot)) = seq_of(&message) else {
                    continue;
                };
                n += 1;
                {
                    let mut seen = stub.seen.lock().expect("lock");
                    seen.streams[stream_index].push((seq, snapshot));
                    seen.stored.insert(seq, snapshot);
                }
                if stream_index == 0 && n > stub.first_stream_acks {
                    if n >= stub.first_stream_acks + 5 {
                        let _ = tx.send(Err(Status::unavailable("stand-in failure"))).await;
                        return;
                    }
                    continue;
                }
                let ack = pb::CollectorMessage {
                    body: Some(pb::collector_message::Body::Ack(pb::Ack { seq })),
                };
                if tx.send(Ok(ack)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn drift(seq: u64) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Drift(pb::DriftEvent {
            seq,
            at: "2026-11-22T10:00:00Z".into(),
            kind: pb::DriftKind::Failing.into(),
            previous: pb::Status::Pass.into(),
            result: Some(pb::RuleResult {
                policy: "p".into(),
                rule: format!("r{seq}"),
                ..Default::default()
            }),
            hostname: "agent".into(),
        })),
    }
}

fn view() -> AgentView {
    AgentView {
        hostname: "agent".into(),
        root: "/".into(),
        started_at: jiff::Timestamp::now(),
        last_full_scan_at: None,
        report: hardend_engine::Report {
            schema: "hardend.report/v1".into(),
            host: hardend_engine::report::HostInfo {
                hostname: "agent".into(),
                root: "/".into(),
            },
            started_at: "2026-11-22T10:00:00Z".into(),
            duration_ms: 1.0,
            policies: vec![],
            summary: Default::default(),
            results: vec![],
        },
        first_failed: Default::default(),
        overdue: Default::default(),
        policies: vec![],
        policy_errors: vec![],
        drift_events: 0,
    }
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_resends_what_was_not_acknowledged_after_a_failed_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).expect("mkdir");
    make_pki(&pki);
    let read = |name: &str| std::fs::read(pki.join(name)).expect("read pem");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub = Stub {
        seen: seen.clone(),
        first_stream_acks: 10,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(read("server.pem"), read("server.key")))
        .client_ca_root(Certificate::from_pem(read("ca.pem")));
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .tls_config(tls)
            .expect("server tls")
            .add_service(CollectorServer::new(stub))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move {
                    let _ = server_stopped.await;
                },
            ),
    );

    let outbox =
        SharedOutbox::open(&dir.path().join("state"), OutboxOptions::default()).expect("outbox");
    outbox
        .append((1..=30).map(drift).collect())
        .expect("queue 30 events");

    // A stand-in core: the view, and snapshots on request with the next seq.
    let (_view_tx, view_rx) = watch::channel(Arc::new(view()));
    let (drift_tx, _) = broadcast::channel(16);
    let (commands_tx, mut commands) = mpsc::channel::<Command>(8);
    let core_outbox = outbox.clone();
    tokio::spawn(async move {
        while let Some(command) = commands.recv().await {
            if let Command::Snapshot = command {
                let next = core_outbox.lock().expect("lock").last_seq() + 1;
                core_outbox
                    .append(vec![snapshot_message(next, &view())])
                    .expect("queue a snapshot");
            }
        }
    });
    let shared = Shared {
        view: view_rx,
        drift: drift_tx,
        commands: commands_tx,
    };
    let options = PushOptions {
        url: format!("https://{addr}"),
        ca: pki.join("ca.pem"),
        cert: pki.join("agent.pem"),
        key: pki.join("agent.key"),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    };
    let (stop_push, push_stopped) = tokio::sync::oneshot::channel::<()>();
    let push = tokio::spawn(run_push(options, outbox.clone(), shared, async move {
        let _ = push_stopped.await;
    }));

    // The first stream fails after 15 messages, 10 of them acknowledged.
    wait_until("a second stream", || {
        seen.lock().expect("lock").streams.len() >= 2
    })
    .await;
    let last = || outbox.lock().expect("lock").last_seq();
    wait_until("everything acknowledged", || {
        let o = outbox.lock().expect("lock");
        o.is_empty() && o.acked() == o.last_seq() && o.last_seq() >= 32
    })
    .await;
    // Live events go out as they are queued.
    let base = last();
    outbox
        .append((base + 1..=base + 10).map(drift).collect())
        .expect("queue live events");
    wait_until("the live events", || {
        seen.lock().expect("lock").stored.keys().next_back() == Some(&(base + 10))
    })
    .await;
    wait_until("the live events acknowledged", || {
        outbox.lock().expect("lock").is_empty()
    })
    .await;

    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.hellos[0].host, "agent");
        assert_eq!(
            seen.hellos[0].last_seq, 30,
            "the Hello says what was assigned"
        );
        let first = &seen.streams[0];
        assert_eq!(
            first.iter().map(|(s, _)| *s).take(15).collect::<Vec<_>>(),
            (1..=15).collect::<Vec<_>>()
        );
        // The second stream starts after the last acknowledged message.
        let second = &seen.streams[1];
        assert_eq!(second.first(), Some(&(11, false)), "{second:?}");
        for stream in &seen.streams {
            assert!(
                stream.windows(2).all(|w| w[0].0 < w[1].0),
                "in order: {stream:?}"
            );
        }
        // Every seq arrived; the snapshots asked for after connecting are among them.
        let stored: Vec<u64> = seen.stored.keys().copied().collect();
        assert_eq!(stored, (1..=base + 10).collect::<Vec<_>>());
        let snapshots = seen.stored.values().filter(|s| **s).count();
        assert!(snapshots >= 2, "a snapshot per connection: {snapshots}");
    }

    let _ = stop_push.send(());
    tokio::time::timeout(Duration::from_secs(5), push)
        .await
        .expect("the push task stops")
        .expect("join");
    let _ = stop_server.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}
