//! Collector load: simulated agents (many concurrent `Collector.Connect`
//! streams over loopback with mutual TLS, from this one process) against one
//! collector served in process, with SQLite and then with PostgreSQL (a
//! private cluster, when PostgreSQL is installed and we are root), with
//! 10,000 hosts registered and their 200 results each stored first.
//!
//! It prints three figures. Drift events ingested per second (target: at
//! least 20,000). Snapshots of 200 results per second, twice: in the steady
//! state, where 5 % of a host's results changed since its previous snapshot
//! (the target, at least 1,000, is for this case: the store writes only the
//! rows that changed, so a figure for unchanged snapshots would flatter
//! it), and when every result is new (the rule names change with each
//! snapshot, so every row is written and the previous ones removed). And
//! the p99 time from sending a drift event to seeing it in `ListFindings`
//! (target: under 1 s).
//!
//! The simulated agents encode every message of a timed phase before the
//! phase starts, as real agents do on their own hosts: what the figures
//! time is the collector (TLS, gRPC framing, decoding, storing,
//! acknowledging) and, unavoidably on one machine, the agents' side of the
//! TLS streams.
//!
//! `cargo bench -p hardend-tests --bench collector_load`; sizes through
//! HARDEND_BENCH_HOSTS, HARDEND_BENCH_AGENTS, HARDEND_BENCH_EVENTS,
//! HARDEND_BENCH_SNAPSHOTS, HARDEND_BENCH_LATENCY_SAMPLES; one backend only
//! with HARDEND_BENCH_BACKENDS=sqlite or =postgres.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hardend_collector::config::{CollectorConfig, TlsConfig};
use hardend_collector::pki::{self, CertKind};
use hardend_collector::store::Store;
use hardend_proto as pb;
use hardend_proto::console_client::ConsoleClient;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// An `AgentMessage` encoded ahead of time: tonic's prost codec writes its
/// bytes as they are, so sending it costs no encoding.
#[derive(Debug, Default, Clone, PartialEq)]
struct Encoded(Vec<u8>);

impl Encoded {
    fn of(message: &pb::AgentMessage) -> Encoded {
        Encoded(prost::Message::encode_to_vec(message))
    }
}

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    /// The bench never decodes its own messages; were it to, it would skip
    /// every field.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sizes {
    hosts: usize,
    agents: usize,
    events: usize,
    snapshots: usize,
    latency_samples: usize,
}

fn result(i: usize, fail: bool) -> pb::RuleResult {
    named_result(i, format!("rule-{i:03}"), fail)
}

fn named_result(i: usize, rule: String, fail: bool) -> pb::RuleResult {
    let status = if fail {
        pb::Status::Fail
    } else {
        pb::Status::Pass
    };
    pb::RuleResult {
        policy: format!("linux-baseline-{}", i % 8),
        rule,
        title: format!("Benchmark rule {i}"),
        severity: [
            pb::Severity::Low,
            pb::Severity::Medium,
            pb::Severity::High,
            pb::Severity::Critical,
        ][i % 4]
            .into(),
        status: status.into(),
        waived_status: 0,
        expected: Some("value = 0".into()),
        actual: Some(if fail { "1" } else { "0" }.into()),
        evidence: vec![pb::Evidence {
            path: "/etc/sysctl.conf".into(),
            line: Some(u32::try_from(i % 500).unwrap_or(0)),
            text: Some("net.ipv4.ip_forward = 1".into()),
        }],
        message: None,
        first_failed_at: fail.then(|| "2026-11-22T10:00:00Z".to_string()),
        overdue: false,
    }
}

fn drift(seq: u64, rule: usize, fail: bool) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Drift(pb::DriftEvent {
            seq,
            at: jiff::Timestamp::now().to_string(),
            kind: if fail {
                pb::DriftKind::Failing
            } else {
                pb::DriftKind::Passing
            }
            .into(),
            previous: if fail {
                pb::Status::Pass
            } else {
                pb::Status::Fail
            }
            .into(),
            result: Some(result(rule, fail)),
            hostname: String::new(),
        })),
    }
}

/// Rules per snapshot, and how many of them a steady-state snapshot flips.
const RULES: usize = 200;
const FLIPPED: usize = 5;

/// What the snapshots of the load are like.
#[derive(Clone, Copy)]
enum Snapshots {
    /// Every result is of a rule the host never reported before (the rule
    /// names carry the sequence number): all 200 rows are inserted, and the
    /// 200 of the host's previous snapshot are removed.
    AllNew,
    /// The same 200 rules each time. Rule `i` fails when `i % 7 == 0`, except
    /// that the `FLIPPED` rules of a window that moves by `FLIPPED` with each
    /// snapshot are the other way round: between two snapshots of a host,
    /// 2 x 5 = 10 results (5 %) change.
    Steady,
}

fn snapshot(seq: u64, host: &str, kind: Snapshots) -> pb::AgentMessage {
    let window = (seq as usize * FLIPPED) % RULES;
    let results: Vec<pb::RuleResult> = (0..RULES)
        .map(|i| match kind {
            Snapshots::AllNew => named_result(i, format!("rule-{i:03}-s{seq}"), i % 7 == 0),
            Snapshots::Steady => {
                let flipped = (i + RULES - window) % RULES < FLIPPED;
                result(i, (i % 7 == 0) != flipped)
            }
        })
        .collect();
    let first_failed_at = results
        .iter()
        .filter(|r| r.status == pb::Status::Fail as i32)
        .map(|r| {
            (
                format!("{}/{}", r.policy, r.rule),
                "2026-11-22T10:00:00Z".to_string(),
            )
        })
        .collect();
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Snapshot(pb::Snapshot {
            seq,
            report: Some(pb::Report {
                schema: "hardend.report/v1".into(),
                hostname: host.into(),
                root: "/".into(),
                started_at: jiff::Timestamp::now().to_string(),
                duration_ms: 3.0,
                policies: (0..8)
                    .map(|i| pb::PolicyRef {
                        id: format!("linux-baseline-{i}"),
                        version: "1.0.0".into(),
                    })
                    .collect(),
                summary: Some(pb::Summary {
                    total: RULES as u32,
                    ..Default::default()
                }),
                results,
            }),
            first_failed_at,
            folded_events: 0,
        })),
    }
}

/// Every agent encodes its next `per_agent` messages (`make(seq, i)` for
/// the i-th), then, timed, all agents send them as fast as their streams
/// take them and wait for their last ack; returns the seconds taken.
async fn send_all(
    agents: &mut Vec<SimAgent>,
    per_agent: usize,
    make: impl Fn(u64, usize, &str) -> pb::AgentMessage,
) -> f64 {
    let prepared: Vec<Vec<Encoded>> = agents
        .iter()
        .map(|agent| {
            (0..per_agent)
                .map(|i| Encoded::of(&make(agent.next_seq + i as u64, i, &agent.host)))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (mut agent, messages) in agents.drain(..).zip(prepared) {
        set.spawn(async move {
            let mut last = 0;
            for message in messages {
                last = agent.send(message).await;
            }
            agent.wait_acked(last).await;
            agent
        });
    }
    while let Some(agent) = set.join_next().await {
        agents.push(agent.expect("agent task"));
    }
    started.elapsed().as_secs_f64()
}

/// Every agent sends `per_agent` snapshots of `kind`; the seconds taken.
async fn send_snapshots(agents: &mut Vec<SimAgent>, per_agent: usize, kind: Snapshots) -> f64 {
    send_all(agents, per_agent, |seq, _, host| snapshot(seq, host, kind)).await
}

fn tls(dir: &Path, name: &str) -> ClientTlsConfig {
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(dir.join("ca.pem"))))
        .identity(Identity::from_pem(
            read(dir.join(format!("{name}.pem"))),
            read(dir.join(format!("{name}.key"))),
        ))
}

async fn channel(url: &str, dir: &Path, name: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .expect("url")
        .tls_config(tls(dir, name))
        .expect("tls")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{name}: connect: {e:?}"))
}

/// One simulated agent's open stream: a sender and the highest ack seen.
struct SimAgent {
    tx: mpsc::Sender<Encoded>,
    acked: watch::Receiver<u64>,
    next_seq: u64,
    host: String,
}

impl SimAgent {
    async fn connect(url: &str, dir: &Path, host: &str) -> SimAgent {
        let channel = channel(url, dir, host).await;
        let (tx, rx) = mpsc::channel(1024);
        tx.send(Encoded::of(&pb::AgentMessage {
            body: Some(pb::agent_message::Body::Hello(pb::Hello {
                host: host.into(),
                agent_version: "bench".into(),
                policies: vec![],
                last_seq: 0,
            })),
        }))
        .await
        .expect("hello");
        // `Collector.Connect` as the generated client calls it, with the
        // messages' bytes written as they are.
        let mut client = tonic::client::Grpc::new(channel)
            .max_encoding_message_size(16 << 20)
            .max_decoding_message_size(16 << 20);
        client
            .ready()
            .await
            .unwrap_or_else(|e| panic!("{host}: channel not ready: {e}"));
        let codec = tonic_prost::ProstCodec::<Encoded, pb::CollectorMessage>::default();
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/hardend.v1.Collector/Connect");
        let mut inbound = client
            .streaming(tonic::Request::new(ReceiverStream::new(rx)), path, codec)
            .await
            .unwrap_or_else(|e| panic!("{host}: Connect: {e}"))
            .into_inner();
        let (ack_tx, acked) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if let Some(pb::collector_message::Body::Ack(a)) = m.body {
                    ack_tx.send_if_modified(|v| {
                        let newer = a.seq > *v;
                        if newer {
                            *v = a.seq;
                        }
                        newer
                    });
                }
            }
        });
        SimAgent {
            tx,
            acked,
            next_seq: 1,
            host: host.into(),
        }
    }

    /// Sends the agent's next message, encoded with its next sequence number.
    async fn send(&mut self, message: Encoded) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.tx.send(message).await.expect("stream open");
        seq
    }

    async fn wait_acked(&mut self, seq: u64) {
        let result =
            tokio::time::timeout(Duration::from_secs(300), self.acked.wait_for(|v| *v >= seq))
                .await;
        match result {
            Ok(Ok(_)) => {}
            _ => panic!("{}: seq {seq} was not acknowledged", self.host),
        }
    }
}

/// Runs the load against one store URL and prints the figures.
async fn measure(label: &str, store_url: &str, pki_dir: &Path, sizes: &Sizes) {
    let store = Store::open(store_url, Default::default())
        .await
        .unwrap_or_else(|e| panic!("{label}: open the store: {e}"));
    // Register the fleet: every host says Hello once.
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..sizes.hosts {
        let store = store.clone();
        set.spawn(async move {
            let hello = pb::Hello {
                host: format!("host-{i:05}"),
                agent_version: "bench".into(),
                policies: vec![],
                last_seq: 0,
            };
            store
                .hello(&hello, jiff::Timestamp::now())
                .await
                .map(|_| ())
        });
        if set.len() >= 512
            && let Some(r) = set.join_next().await
        {
            r.expect("join").expect("hello");
        }
    }
    while let Some(r) = set.join_next().await {
        r.expect("join").expect("hello");
    }
    println!(
        "{label}: registered {} hosts in {:.1} s",
        sizes.hosts,
        started.elapsed().as_secs_f64()
    );
    // Every registered host reports its 200 results once, untimed, so the
    // tables are the size of a 10,000-host fleet's (2,000,000 results)
    // when the timed phases start.
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..sizes.hosts {
        let host = format!("host-{i:05}");
        let Some(pb::agent_message::Body::Snapshot(snap)) =
            snapshot(1, &host, Snapshots::Steady).body
        else {
            unreachable!("snapshot() makes snapshots");
        };
        pending.push_back(
            store
                .queue_snapshot(&host, &snap, jiff::Timestamp::now())
                .await
                .expect("queue a snapshot"),
        );
        if pending.len() >= 256
            && let Some(p) = pending.pop_front()
        {
            p.stored().await.expect("store a snapshot");
        }
    }
    for p in pending {
        p.stored().await.expect("store a snapshot");
    }
    println!(
        "{label}: stored {} results of {} hosts in {:.1} s (untimed)",
        sizes.hosts * RULES,
        sizes.hosts,
        started.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = CollectorConfig::with_tls(TlsConfig {
        ca: pki_dir.join("ca.pem"),
        cert: pki_dir.join("127.0.0.1.pem"),
        key: pki_dir.join("127.0.0.1.key"),
    });
    config.listen = addr;
    config.store = store_url.to_string();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(hardend_collector::server::serve_with(
        config,
        store,
        listener,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let url = format!("https://{addr}");

    let mut agents = Vec::new();
    for a in 0..sizes.agents {
        agents.push(SimAgent::connect(&url, pki_dir, &format!("sim-{a:03}")).await);
    }

    // Drift events: every agent sends its share as fast as the stream takes it.
    let per_agent = sizes.events.div_ceil(sizes.agents);
    let secs = send_all(&mut agents, per_agent, |seq, i, _| {
        drift(seq, i % 200, (i / 200) % 2 == 0)
    })
    .await;
    let total = per_agent * sizes.agents;
    println!(
        "{label}: drift events ingested: {:.0}/s ({total} events from {} agents in {secs:.2} s; target >= 20000)",
        total as f64 / secs,
        sizes.agents
    );

    // Snapshots of 200 results: the steady state, which the target is about
    // (after one untimed snapshot per host that moves it onto the steady
    // rule set), then snapshots where every result is new.
    let per_agent = sizes.snapshots.div_ceil(sizes.agents);
    let total = per_agent * sizes.agents;
    send_snapshots(&mut agents, 1, Snapshots::Steady).await;
    let secs = send_snapshots(&mut agents, per_agent, Snapshots::Steady).await;
    println!(
        "{label}: snapshots (200 results, steady state: {} of 200 results changed since the host's previous snapshot) ingested: {:.0}/s ({total} in {secs:.2} s; target >= 1000 for this steady state)",
        2 * FLIPPED,
        total as f64 / secs
    );
    let secs = send_snapshots(&mut agents, per_agent, Snapshots::AllNew).await;
    println!(
        "{label}: snapshots (200 results, every result new: 200 rows inserted and the previous 200 removed per snapshot) ingested: {:.0}/s ({total} in {secs:.2} s; not the target's case)",
        total as f64 / secs
    );

    // Latency: a new failing rule, from sending its event to ListFindings showing it.
    let console = channel(&url, pki_dir, "bench-console").await;
    let mut console = ConsoleClient::new(console).max_decoding_message_size(64 << 20);
    let agent = &mut agents[0];
    let mut samples = Vec::with_capacity(sizes.latency_samples);
    for i in 0..sizes.latency_samples {
        let rule = 1000 + i;
        let message = Encoded::of(&drift(agent.next_seq, rule, true));
        let sent = Instant::now();
        agent.send(message).await;
        let request = pb::ListFindingsRequest {
            host: agent.host.clone(),
            rule: format!("rule-{rule:03}"),
            ..Default::default()
        };
        loop {
            let found = console
                .list_findings(request.clone())
                .await
                .expect("ListFindings")
                .into_inner()
                .findings;
            if !found.is_empty() {
                break;
            }
            assert!(sent.elapsed() < Duration::from_secs(30), "never visible");
        }
        samples.push(sent.elapsed());
    }
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "{label}: drift -> ListFindings: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples; target p99 < 1000 ms)",
        p(0.50).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        p(1.0).as_secs_f64() * 1e3,
        samples.len()
    );

    drop(agents);
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Ok(()))) => {}
        other => println!("{label}: the collector did not stop cleanly: {other:?}"),
    }
}

fn postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// A throwaway PostgreSQL cluster on a Unix socket in a temporary directory,
/// run as the `postgres` user, stopped when dropped.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Postgres {
    fn as_postgres(program: &Path) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    }

    fn start(bin: PathBuf) -> Result<Postgres, String> {
        let dir = tempfile::Builder::new()
            .prefix("hardend-bench-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let chown = Command::new("chown")
            .arg("postgres:")
            .arg(dir.path())
            .status()
            .map_err(|e| e.to_string())?;
        if !chown.success() {
            return Err("cannot chown the cluster directory".into());
        }
        let data = dir.path().join("data");
        let out = Self::as_postgres(&bin.join("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let options = format!("-k {} -p 5432 -c listen_addresses=''", dir.path().display());
        let out = Self::as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .map_err(|e| e.to_string())?;
        let pg = Postgres { dir, bin };
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(pg)
    }

    fn url(&self) -> String {
        format!(
            "postgres:///postgres?host={}&port=5432&user=postgres",
            self.dir.path().display()
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Self::as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either way: both run the load.
    let sizes = Sizes {
        hosts: env_usize("HARDEND_BENCH_HOSTS", 10_000),
        agents: env_usize("HARDEND_BENCH_AGENTS", 50).max(1),
        events: env_usize("HARDEND_BENCH_EVENTS", 200_000),
        snapshots: env_usize("HARDEND_BENCH_SNAPSHOTS", 6_000),
        latency_samples: env_usize("HARDEND_BENCH_LATENCY_SAMPLES", 200).max(1),
    };
    let work = tempfile::tempdir().expect("tempdir");
    let pki_dir = work.path().join("pki");
    pki::init(&pki_dir).expect("pki init");
    pki::issue(&pki_dir, CertKind::Collector, "127.0.0.1").expect("collector cert");
    pki::issue(&pki_dir, CertKind::Console, "bench-console").expect("console cert");
    for a in 0..sizes.agents {
        pki::issue(&pki_dir, CertKind::Agent, &format!("sim-{a:03}")).expect("agent cert");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // HARDEND_BENCH_BACKENDS=sqlite (or postgres) measures one backend only.
    let backends = std::env::var("HARDEND_BENCH_BACKENDS").unwrap_or_default();
    let wanted = |name: &str| backends.is_empty() || backends.split(',').any(|b| b.trim() == name);

    if wanted("sqlite") {
        let sqlite = format!("sqlite://{}", work.path().join("bench.db").display());
        runtime.block_on(measure("sqlite", &sqlite, &pki_dir, &sizes));
    }
    if !wanted("postgres") {
        return;
    }

    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    match postgres_bin() {
        Some(bin) if is_root => match Postgres::start(bin) {
            Ok(pg) => runtime.block_on(measure("postgres", &pg.url(), &pki_dir, &sizes)),
            Err(e) => println!("postgres: skipped: cannot start a private cluster: {e}"),
        },
        _ => println!("postgres: skipped: PostgreSQL is not installed or we are not root"),
    }
}
