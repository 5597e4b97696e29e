//! `hardenctl` against a real collector (`server::serve_with` on SQLite over
//! loopback with mutual TLS and certificates from `pki`): two agents push
//! snapshots on the Collector service with their own certificates, and the
//! console sees both hosts, their findings with the promised JSON fields,
//! and a drift event live in `hardenctl watch`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use hardend_collector::config::{CollectorConfig, TlsConfig};
use hardend_collector::pki::{self, CertKind};
use hardend_collector::server::serve_with;
use hardend_collector::store::Store;
use hardend_collector::tls::client_tls;
use hardend_proto as pb;
use hardend_proto::collector_client::CollectorClient;
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::transport::Endpoint;

struct Fleet {
    dir: tempfile::TempDir,
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Fleet {
    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `hardenctl` with the console certificate `alice`.
    fn hardenctl(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hardenctl"));
        cmd.env_remove("HARDENCTL_COLLECTOR")
            .arg("--collector")
            .arg(&self.url)
            .arg("--ca")
            .arg(self.path("ca.pem"))
            .arg("--cert")
            .arg(self.path("alice.pem"))
            .arg("--key")
            .arg(self.path("alice.key"));
        cmd
    }
}

/// A CA, a collector on 127.0.0.1 with a SQLite store in the same temp
/// directory, agent certificates `web-1` and `web-2`, a console `alice`.
fn start() -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    pki::init(p).unwrap();
    pki::issue(p, CertKind::Collector, "127.0.0.1").unwrap();
    pki::issue(p, CertKind::Agent, "web-1").unwrap();
    pki::issue(p, CertKind::Agent, "web-2").unwrap();
    pki::issue(p, CertKind::Console, "alice").unwrap();
    let mut config = CollectorConfig::with_tls(TlsConfig {
        ca: p.join("ca.pem"),
        cert: p.join("127.0.0.1.pem"),
        key: p.join("127.0.0.1.key"),
    });
    config.store = format!("sqlite://{}", p.join("hardend.db").display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (listener, store) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let store = Store::open(&config.store, config.deadlines.clone())
            .await
            .unwrap();
        (listener, store)
    });
    let url = format!("https://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        if let Err(e) = serve_with(config, store, listener, std::future::pending()).await {
            panic!("the collector stopped: {e}");
        }
    });
    Fleet { dir, url, rt }
}

fn result(rule: &str, severity: pb::Severity, status: pb::Status) -> pb::RuleResult {
    pb::RuleResult {
        policy: "linux-baseline-ssh".into(),
        rule: rule.into(),
        title: format!("{rule} title"),
        severity: severity.into(),
        status: status.into(),
        expected: Some("no".into()),
        actual: Some(
            if status == pb::Status::Fail {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
        first_failed_at: (status == pb::Status::Fail).then(|| "2026-11-22T06:00:00Z".into()),
        ..Default::default()
    }
}

fn report(host: &str, results: Vec<pb::RuleResult>) -> pb::Report {
    let count = |s: pb::Status| results.iter().filter(|r| r.status == s as i32).count() as u32;
    pb::Report {
        schema: "hardend.report/v1".into(),
        hostname: host.into(),
        root: "/".into(),
        started_at: "2026-11-22T12:00:00Z".into(),
        duration_ms: 1.0,
        policies: vec![pb::PolicyRef {
            id: "linux-baseline-ssh".into(),
            version: "1.0.0".into(),
        }],
        summary: Some(pb::Summary {
            total: results.len() as u32,
            pass: count(pb::Status::Pass),
            fail: count(pb::Status::Fail),
            ..Default::default()
        }),
        results,
    }
}

fn message(body: pb::agent_message::Body) -> pb::AgentMessage {
    pb::AgentMessage { body: Some(body) }
}

/// An agent's open push stream: send messages, read acks.
struct AgentStream {
    tx: mpsc::Sender<pb::AgentMessage>,
    acks: tonic::Streaming<pb::CollectorMessage>,
}

impl AgentStream {
    async fn open(fleet_dir: &Path, url: &str, host: &str) -> AgentStream {
        let tls = client_tls(
            &fleet_dir.join("ca.pem"),
            &fleet_dir.join(format!("{host}.pem")),
            &fleet_dir.join(format!("{host}.key")),
            None,
        )
        .unwrap();
        let channel = Endpoint::from_shared(url.to_string())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel(16);
        tx.send(message(pb::agent_message::Body::Hello(pb::Hello {
            host: host.into(),
            agent_version: "0.1.0".into(),
            policies: vec![pb::PolicyRef {
                id: "linux-baseline-ssh".into(),
                version: "1.0.0".into(),
            }],
            last_seq: 0,
        })))
        .await
        .unwrap();
        let acks = CollectorClient::new(channel)
            .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        AgentStream { tx, acks }
    }

    /// Sends `body` and waits until the collector acknowledges `seq`.
    async fn send(&mut self, seq: u64, body: pb::agent_message::Body) {
        self.tx.send(message(body)).await.unwrap();
        loop {
            let answer = tokio::time::timeout(Duration::from_secs(10), self.acks.message())
                .await
                .expect("an ack within 10 s")
                .expect("the collector keeps the stream")
                .expect("the stream stays open");
            let Some(pb::collector_message::Body::Ack(ack)) = answer.body else {
                continue;
            };
            if ack.seq >= seq {
                return;
            }
        }
    }
}

fn snapshot(host: &str, results: Vec<pb::RuleResult>) -> pb::agent_message::Body {
    let first_failed_at = results
        .iter()
        .filter_map(|r| {
            r.first_failed_at
                .clone()
                .map(|t| (format!("{}/{}", r.policy, r.rule), t))
        })
        .collect();
    pb::agent_message::Body::Snapshot(pb::Snapshot {
        seq: 1,
        report: Some(report(host, results)),
        first_failed_at,
        folded_events: 0,
    })
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_console_sees_what_agents_pushed_to_a_real_collector() {
    use pb::Severity::*;
    use pb::Status::*;
    let fleet = start();
    let p = fleet.dir.path().to_path_buf();
    let mut web2 = fleet.rt.block_on(async {
        let mut web1 = AgentStream::open(&p, &fleet.url, "web-1").await;
        web1.send(
            1,
            snapshot(
                "web-1",
                vec![
                    result("ssh-password-auth-disabled", Critical, Fail),
                    result("ssh-root-login-disabled", High, Pass),
                ],
            ),
        )
        .await;
        let mut web2 = AgentStream::open(&p, &fleet.url, "web-2").await;
        web2.send(
            1,
            snapshot(
                "web-2",
                vec![
                    result("ssh-password-auth-disabled", Critical, Pass),
                    result("ssh-root-login-disabled", High, Fail),
                ],
            ),
        )
        .await;
        web2
    });

    let hosts = json(
        &fleet
            .hardenctl()
            .args(["--json", "hosts"])
            .output()
            .unwrap(),
    );
    let mut names: Vec<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["web-1", "web-2"]);

    let all = json(
        &fleet
            .hardenctl()
            .args(["findings", "--json"])
            .output()
            .unwrap(),
    );
    let mut pairs: Vec<(String, String)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["host"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (
                "web-1".to_string(),
                "ssh-password-auth-disabled".to_string()
            ),
            ("web-2".to_string(), "ssh-root-login-disabled".to_string()),
        ]
    );

    let critical = json(
        &fleet
            .hardenctl()
            .args(["findings", "--severity", "critical", "--json"])
            .output()
            .unwrap(),
    );
    let list = critical.as_array().unwrap();
    assert_eq!(list.len(), 1, "{critical}");
    let f = &list[0];
    assert_eq!(f["host"], "web-1");
    assert_eq!(f["policy"], "linux-baseline-ssh");
    assert_eq!(f["rule"], "ssh-password-auth-disabled");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["status"], "fail");
    assert_eq!(f["first_failed_at"], "2026-11-22T06:00:00Z");
    assert!(f["overdue"].is_boolean(), "{f}");

    let table = fleet.hardenctl().arg("summary").output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with("Fleet: 2 hosts"), "{text}");

    // Live drift: web-2 starts failing password authentication while a
    // console watches. The watch may not be subscribed yet when the first
    // event is sent, so events are sent until one shows.
    let mut child = fleet
        .hardenctl()
        .args(["watch", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seq = 1;
    let seen: Value = loop {
        assert!(
            Instant::now() < deadline,
            "no drift reached hardenctl watch"
        );
        seq += 1;
        let event = pb::DriftEvent {
            seq,
            at: "2026-11-22T12:01:00Z".into(),
            kind: pb::DriftKind::Failing.into(),
            previous: Pass.into(),
            result: Some(result("ssh-password-auth-disabled", Critical, Fail)),
            hostname: "web-2".into(),
        };
        fleet
            .rt
            .block_on(web2.send(seq, pb::agent_message::Body::Drift(event)));
        if let Ok(line) = line_rx.recv_timeout(Duration::from_millis(500)) {
            break serde_json::from_str(&line.unwrap()).unwrap();
        }
    };
    assert_eq!(seen["host"], "web-2");
    assert_eq!(seen["rule"], "ssh-password-auth-disabled");
    assert_eq!(seen["status"], "fail");
    // The child is ours; it is ended by its own handle.
    child.kill().unwrap();
    child.wait().unwrap();
}
