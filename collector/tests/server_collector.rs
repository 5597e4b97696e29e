//! The collector's gRPC server over loopback with mutual TLS: agents connect,
//! every message is acknowledged in order and stored once, a Hello for
//! another host and an oversized message are refused while the collector
//! keeps serving others, consoles read (and only read), and each refusal is
//! counted by reason in the metrics.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hardend_collector::config::{CollectorConfig, MetricsConfig, TlsConfig};
use hardend_collector::pki::{self, CertKind};
use hardend_collector::server::serve_with;
use hardend_collector::store::Store;
use hardend_collector::tls::client_tls;
use hardend_proto::collector_client::CollectorClient;
use hardend_proto::console_client::ConsoleClient;
use hardend_proto::{
    AgentMessage, CollectorMessage, ConsoleWatchDriftRequest, DriftEvent, DriftKind,
    FleetSummaryRequest, GetHostRequest, Hello, ListFindingsRequest, ListHostsRequest, Report,
    RuleResult, Severity, Snapshot, Status, agent_message, collector_message,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

struct Collector {
    _dir: tempfile::TempDir,
    pki: PathBuf,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start(max_message_bytes: usize) -> Collector {
        Collector::start_with_metrics(max_message_bytes, None).await
    }

    /// A collector that also serves metrics on `metrics`.
    async fn start_with_metrics(
        max_message_bytes: usize,
        metrics: Option<std::net::SocketAddr>,
    ) -> Collector {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki_dir = dir.path().join("pki");
        pki::init(&pki_dir).expect("pki init");
        pki::issue(&pki_dir, CertKind::Collector, "localhost").expect("collector cert");
        for agent in ["web-1", "web-2", "db-1"] {
            pki::issue(&pki_dir, CertKind::Agent, agent).expect("agent cert");
        }
        pki::issue(&pki_dir, CertKind::Console, "alice").expect("console cert");
        let mut config = CollectorConfig::with_tls(TlsConfig {
            ca: pki_dir.join("ca.pem"),
            cert: pki_dir.join("localhost.pem"),
            key: pki_dir.join("localhost.key"),
        });
        config.store = format!("sqlite://{}", dir.path().join("store/hardend.db").display());
        config.max_message_bytes = max_message_bytes;
        config.metrics = metrics.map(|listen| MetricsConfig { listen });
        let store = Store::open(&config.store, config.deadlines.clone())
            .await
            .expect("open store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve_with(config, store, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        Collector {
            _dir: dir,
            pki: pki_dir,
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn channel(&self, name: &str) -> Channel {
        let cert = self.pki.join(format!("{name}.pem"));
        let key = self.pki.join(format!("{name}.key"));
        channel_with(&self.pki.join("ca.pem"), &cert, &key, self.addr).await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn channel_with(ca: &Path, cert: &Path, key: &Path, addr: std::net::SocketAddr) -> Channel {
    let tls = client_tls(ca, cert, key, Some("localhost")).expect("client tls");
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connect")
}

/// One agent stream: what it sends and what it hears back.
struct Agent {
    tx: mpsc::Sender<AgentMessage>,
    acks: Streaming<CollectorMessage>,
}

fn hello(host: &str, last_seq: u64) -> AgentMessage {
    AgentMessage {
        body: Some(agent_message::Body::Hello(Hello {
            host: host.to_string(),
            agent_version: "0.1.0".to_string(),
            policies: Vec::new(),
            last_seq,
        })),
    }
}

fn rule(rule: &str, status: Status) -> RuleResult {
    RuleResult {
        policy: "base".to_string(),
        rule: rule.to_string(),
        title: rule.to_string(),
        severity: Severity::Critical as i32,
        status: status as i32,
        ..Default::default()
    }
}

fn drift(seq: u64, rule_name: &str, status: Status) -> AgentMessage {
    AgentMessage {
        body: Some(agent_message::Body::Drift(DriftEvent {
            seq,
            at: jiff::Timestamp::now().to_string(),
            kind: DriftKind::Failing as i32,
            result: Some(rule(rule_name, status)),
            ..Default::default()
        })),
    }
}

fn snapshot(seq: u64, results: Vec<RuleResult>) -> AgentMessage {
    AgentMessage {
        body: Some(agent_message::Body::Snapshot(Snapshot {
            seq,
            report: Some(Report {
                started_at: jiff::Timestamp::now().to_string(),
                results,
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
}

/// Opens a Connect stream and sends `first`; the error when the collector
/// refuses it (at once or as the stream's first item).
async fn open(channel: Channel, first: AgentMessage) -> Result<Agent, tonic::Status> {
    let (tx, rx) = mpsc::channel(64);
    tx.send(first).await.expect("queue hello");
    let mut client = CollectorClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let acks = client.connect(ReceiverStream::new(rx)).await?.into_inner();
    Ok(Agent { tx, acks })
}

impl Agent {
    async fn send(&self, message: AgentMessage) {
        self.tx.send(message).await.expect("send");
    }

    async fn next_ack(&mut self) -> Result<u64, tonic::Status> {
        let message = tokio::time::timeout(Duration::from_secs(10), self.acks.message())
            .await
            .expect("an answer within 10 s")?;
        match message.and_then(|m| m.body) {
            Some(collector_message::Body::Ack(ack)) => Ok(ack.seq),
            None => Err(tonic::Status::unknown("the stream ended")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_connect_acks_in_order_and_dedupes() {
    let collector = Collector::start(4 * 1024 * 1024).await;
    let channel = collector.channel("web-1").await;
    let mut agent = open(channel.clone(), hello("web-1", 0))
        .await
        .expect("connect");
    agent
        .send(snapshot(
            1,
            vec![rule("a", Status::Pass), rule("b", Status::Pass)],
        ))
        .await;
    agent.send(drift(2, "a", Status::Fail)).await;
    agent.send(drift(3, "b", Status::Fail)).await;
    agent.send(drift(2, "a", Status::Fail)).await; // a resend
    agent.send(drift(4, "b", Status::Pass)).await;
    let mut acks = Vec::new();
    for _ in 0..5 {
        acks.push(agent.next_ack().await.expect("ack"));
    }
    assert_eq!(acks, [1, 2, 3, 2, 4]);
    drop(agent);

    // The console sees one host with the one open finding and every event once.
    let console_channel = collector.channel("alice").await;
    let mut console = ConsoleClient::new(console_channel.clone());
    let findings = console
        .list_findings(ListFindingsRequest::default())
        .await
        .expect("list findings")
        .into_inner()
        .findings;
    assert_eq!(findings.len(), 1);
    assert_eq!(
        (findings[0].host.as_str(), findings[0].rule.as_str()),
        ("web-1", "a")
    );
    let summary = console
        .fleet_summary(FleetSummaryRequest {})
        .await
        .expect("summary")
        .into_inner();
    assert_eq!((summary.hosts, summary.open_findings), (1, 1));
    let host = console
        .get_host(GetHostRequest {
            host: "web-1".to_string(),
        })
        .await
        .expect("get host")
        .into_inner();
    assert_eq!(host.host.expect("summary").last_seq, 4);
    let missing = console
        .get_host(GetHostRequest {
            host: "nope".to_string(),
        })
        .await
        .expect_err("unknown host");
    assert_eq!(missing.code(), Code::NotFound);

    // Reconnecting, the agent hears at once what is stored.
    let mut again = open(channel.clone(), hello("web-1", 6))
        .await
        .expect("reconnect");
    assert_eq!(again.next_ack().await.expect("stored"), 4);
    again.send(drift(5, "a", Status::Pass)).await;
    again.send(drift(4, "b", Status::Pass)).await;
    again.send(drift(6, "a", Status::Fail)).await;
    let acks = [
        again.next_ack().await.expect("ack"),
        again.next_ack().await.expect("ack"),
        again.next_ack().await.expect("ack"),
    ];
    assert_eq!(acks, [5, 4, 6]);

    // Roles: an agent may not read, a console may not report.
    let mut as_agent = ConsoleClient::new(channel);
    let denied = as_agent
        .list_hosts(ListHostsRequest {})
        .await
        .expect_err("agent reading");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = match open(console_channel, hello("alice", 0)).await {
        Err(status) => status,
        Ok(mut stream) => stream.next_ack().await.expect_err("console reporting"),
    };
    assert_eq!(denied.code(), Code::PermissionDenied);
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_hello_for_another_host_and_oversized_messages() {
    let collector = Collector::start(64 * 1024).await;

    // web-1's certificate claiming web-2.
    let refused = match open(collector.channel("web-1").await, hello("web-2", 0)).await {
        Err(status) => status,
        Ok(mut stream) => stream.next_ack().await.expect_err("refused"),
    };
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");

    // A live drift watcher, to see that others keep flowing.
    let mut console = ConsoleClient::new(collector.channel("alice").await);
    let mut watch = console
        .watch_drift(ConsoleWatchDriftRequest::default())
        .await
        .expect("watch")
        .into_inner();

    // An oversized drift event ends that stream with an error.
    let mut big = open(collector.channel("web-2").await, hello("web-2", 0))
        .await
        .expect("connect");
    big.send(drift(1, "a", Status::Fail)).await;
    assert_eq!(big.next_ack().await.expect("small ack"), 1);
    let mut huge = rule("a", Status::Fail);
    huge.message = Some("x".repeat(200 * 1024));
    big.send(AgentMessage {
        body: Some(agent_message::Body::Drift(DriftEvent {
            seq: 2,
            result: Some(huge),
            ..Default::default()
        })),
    })
    .await;
    let err = big.next_ack().await.expect_err("oversized message refused");
    assert!(
        matches!(
            err.code(),
            Code::OutOfRange | Code::ResourceExhausted | Code::Internal
        ),
        "{err}"
    );

    // The collector still serves another agent, and its drift reaches the watcher.
    let mut other = open(collector.channel("db-1").await, hello("db-1", 0))
        .await
        .expect("connect db-1");
    other.send(drift(1, "z", Status::Fail)).await;
    assert_eq!(other.next_ack().await.expect("ack"), 1);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(1), watch.message())
            .await
            .expect("drift reaches the console within a second")
            .expect("stream")
            .expect("event");
        seen.push((event.hostname, event.seq));
    }
    assert_eq!(seen, [("web-2".to_string(), 1), ("db-1".to_string(), 1)]);

    // The oversized event was not stored.
    let findings = console
        .list_findings(ListFindingsRequest {
            host: "web-2".to_string(),
            ..Default::default()
        })
        .await
        .expect("findings")
        .into_inner()
        .findings;
    assert_eq!(findings.len(), 1);
    assert!(findings[0].actual.is_none());
    let hosts = console
        .list_hosts(ListHostsRequest {})
        .await
        .expect("hosts")
        .into_inner()
        .hosts;
    let web2 = hosts.iter().find(|h| h.host == "web-2").expect("web-2");
    assert_eq!(web2.last_seq, 1);
    collector.stop().await;
}

/// The body of `GET /metrics` from `addr`, over a plain TCP stream (waiting
/// up to 5 s for the endpoint to listen).
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The server task binds the endpoint soon after it starts.
    let mut tries = 0;
    let mut stream = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => break stream,
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the metrics endpoint {addr} does not listen: {e}"),
        }
    };
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .expect("a body")
}

/// The value of the sample line `line` (name and labels as written).
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_metrics_count_each_refusal_by_reason_and_what_was_stored() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("addr");
    let collector = Collector::start_with_metrics(64 * 1024, Some(port)).await;
    let rejected = |text: &str, reason: &str| {
        sample(
            text,
            &format!("hardend_collector_rejected_total{{reason=\"{reason}\"}}"),
        )
    };
    let text = scrape(port).await;
    for reason in [
        "host_mismatch",
        "not_agent_certificate",
        "no_hello",
        "second_hello",
        "too_large",
    ] {
        assert_eq!(rejected(&text, reason), Some(0.0), "{reason}: {text}");
    }

    // web-1's certificate claiming web-2.
    let refused = match open(collector.channel("web-1").await, hello("web-2", 0)).await {
        Err(status) => status,
        Ok(mut stream) => stream.next_ack().await.expect_err("refused"),
    };
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");
    // A console certificate trying to report.
    let refused = match open(collector.channel("alice").await, hello("alice", 0)).await {
        Err(status) => status,
        Ok(mut stream) => stream.next_ack().await.expect_err("refused"),
    };
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");
    // A stream that starts with a drift event.
    let refused = match open(collector.channel("db-1").await, drift(1, "a", Status::Fail)).await {
        Err(status) => status,
        Ok(mut stream) => stream.next_ack().await.expect_err("refused"),
    };
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    // A second Hello is ignored (counted), then an oversized event ends the stream.
    let mut agent = open(collector.channel("web-2").await, hello("web-2", 0))
        .await
        .expect("connect");
    agent.send(hello("web-2", 0)).await;
    agent.send(drift(1, "a", Status::Fail)).await;
    assert_eq!(agent.next_ack().await.expect("ack"), 1);
    let mut huge = rule("a", Status::Fail);
    huge.message = Some("x".repeat(200 * 1024));
    agent
        .send(AgentMessage {
            body: Some(agent_message::Body::Drift(DriftEvent {
                seq: 2,
                result: Some(huge),
                ..Default::default()
            })),
        })
        .await;
    agent
        .next_ack()
        .await
        .expect_err("oversized message refused");

    let text = scrape(port).await;
    assert_eq!(rejected(&text, "host_mismatch"), Some(1.0), "{text}");
    assert_eq!(
        rejected(&text, "not_agent_certificate"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(rejected(&text, "no_hello"), Some(1.0), "{text}");
    assert_eq!(rejected(&text, "second_hello"), Some(1.0), "{text}");
    assert_eq!(rejected(&text, "too_large"), Some(1.0), "{text}");
    assert_eq!(rejected(&text, "incomplete"), Some(0.0), "{text}");
    let messages = |kind: &str| {
        sample(
            &text,
            &format!("hardend_collector_messages_total{{kind=\"{kind}\"}}"),
        )
    };
    assert_eq!(messages("hello"), Some(1.0), "{text}");
    assert_eq!(messages("drift"), Some(1.0), "{text}");
    assert_eq!(messages("snapshot"), Some(0.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "hardend_collector_store_duration_seconds_count{operation=\"queue_drift\"}"
        ),
        Some(1.0),
        "{text}"
    );
    collector.stop().await;
}
