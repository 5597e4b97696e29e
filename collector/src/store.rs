//! The collector's store: hosts, the latest result of every (host, policy,
//! rule), the drift history and the life of every finding, in SQLite (one
//! file, WAL) or PostgreSQL, written by writer tasks that commit the
//! queued messages of all connections together: one for SQLite (which
//! writes one transaction at a time anyway), a few for PostgreSQL, each
//! owning the hosts whose names hash to it, so every host's messages are
//! applied in order by one writer.

mod backend;
mod bulk;
mod digest;

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hardend_policy::config::Deadlines;
use hardend_proto::{
    DriftEvent, FleetSummaryResponse, GetHostResponse, Hello, HostSummary, ListFindingsRequest,
    PolicyRef, RuleResult, Severity, Snapshot, Status,
};
use jiff::Timestamp;
use prost::Message;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use hardend_proto::Finding;

/// The PostgreSQL channel on which the stored drift events are announced
/// (see `backend::announcements` for the payload), so that every
/// collector sharing the database can stream them.
pub const DRIFT_CHANNEL: &str = "hardend_drift";

/// How many queued messages one transaction takes at most.
const MAX_BATCH_OPS: usize = 4096;
/// How many rule results one transaction takes at most (snapshots are large).
const MAX_BATCH_RESULTS: usize = 40_000;
/// How many writes may wait for a writer before senders wait.
const QUEUE_DEPTH: usize = 16_384;
/// How many writers a PostgreSQL store runs: while one waits for the
/// database, another prepares or commits its batch.
const POSTGRES_WRITERS: usize = 2;
/// How many live drift events a slow console may fall behind.
const DRIFT_BROADCAST_DEPTH: usize = 8192;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store URL `{0}`: expected sqlite:///PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("cannot create the store's directory or file {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the store {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate the store {url}: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("the store failed to {what}: {source}")]
    Query {
        what: &'static str,
        source: sqlx::Error,
    },
    #[error("host `{0}` is not known: its agent has not said Hello")]
    UnknownHost(String),
    #[error("the message is incomplete: {0}")]
    Incomplete(&'static str),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("the operating system's random number generator failed")]
    Random,
}

/// Whether a message was stored now or had been stored before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored by this call.
    New,
    /// Its (host, seq) was stored before; nothing changed.
    Duplicate,
}

/// One rule result as the store keeps it.
#[derive(Debug, Clone)]
struct ResultRow {
    policy: String,
    rule: String,
    title: String,
    severity: i64,
    status: i64,
    first_failed_ms: Option<i64>,
    body: Vec<u8>,
}

/// One write, applied by the writer task.
#[derive(Debug)]
enum Op {
    Hello {
        host: String,
        agent_version: String,
        policies: String,
        agent_last_seq: i64,
        at_ms: i64,
    },
    Connected {
        host: String,
        connected: bool,
        at_ms: i64,
    },
    Snapshot {
        host: String,
        seq: i64,
        at_ms: i64,
        policies: String,
        /// Sorted by rule digest when `digests` is there: `rows[j]` is the
        /// row of `digests.pairs()[j]`.
        rows: Vec<ResultRow>,
        /// `None` when two rules' digests collide: the host is then
        /// compared row by row.
        digests: Option<digest::Digests>,
    },
    Drift {
        host: String,
        seq: i64,
        at_ms: i64,
        kind: i64,
        row: ResultRow,
        body: Vec<u8>,
        event: Box<DriftEvent>,
    },
}

impl Op {
    /// The host the write is about.
    fn host(&self) -> &str {
        match self {
            Op::Hello { host, .. }
            | Op::Connected { host, .. }
            | Op::Snapshot { host, .. }
            | Op::Drift { host, .. } => host,
        }
    }

    fn weight(&self) -> usize {
        match self {
            Op::Snapshot { rows, .. } => rows.len().max(1),
            _ => 1,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The host's stored high-water sequence number after a Hello.
    Hello(u64),
    Done,
    Stored(Stored),
}

struct WriteRequest {
    op: Op,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

struct Inner {
    backend: Backend,
    /// The writers' queues; a host's writes go to `writers[shard(host)]`.
    writers: Vec<mpsc::Sender<WriteRequest>>,
    drift: broadcast::Sender<DriftEvent>,
    deadlines: Deadlines,
}

/// A pending write: resolves once its transaction has committed.
pub struct PendingWrite {
    reply: oneshot::Receiver<Result<Outcome, StoreError>>,
}

impl PendingWrite {
    /// Waits for the commit and tells whether the message was new.
    pub async fn stored(self) -> Result<Stored, StoreError> {
        match self.reply.await {
            Ok(Ok(Outcome::Stored(stored))) => Ok(stored),
            Ok(Ok(_)) => Ok(Stored::New),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}

/// The store. Cloning is cheap and shares the same writer and pools.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Milliseconds since the Unix epoch of an RFC 3339 time, if it is one.
fn parse_ms(text: &str) -> Option<i64> {
    text.parse::<Timestamp>().ok().map(|t| t.as_millisecond())
}

/// An RFC 3339 time from Unix milliseconds.
fn format_ms(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn encode_policies(policies: &[PolicyRef]) -> String {
    let mut out = String::new();
    for p in policies {
        let clean = |s: &str| s.replace(['\t', '\n'], " ");
        out.push_str(&clean(&p.id));
        out.push('\t');
        out.push_str(&clean(&p.version));
        out.push('\n');
    }
    out
}

fn decode_policies(text: &str) -> Vec<PolicyRef> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (id, version) = line.split_once('\t').unwrap_or((line, ""));
            PolicyRef {
                id: id.to_string(),
                version: version.to_string(),
            }
        })
        .collect()
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Incomplete("the sequence number is too large"))
}

fn result_row(result: &RuleResult, first_failed: Option<&str>, at_ms: i64) -> ResultRow {
    let failing = result.status == Status::Fail as i32;
    let first_failed_ms = if failing {
        Some(
            result
                .first_failed_at
                .as_deref()
                .or(first_failed)
                .and_then(parse_ms)
                .unwrap_or(at_ms),
        )
    } else {
        None
    };
    ResultRow {
        policy: result.policy.clone(),
        rule: result.rule.clone(),
        title: result.title.clone(),
        severity: i64::from(result.severity),
        status: i64::from(result.status),
        first_failed_ms,
        body: result.encode_to_vec(),
    }
}

/// The per-severity deadline cut-offs for "now": a finding of severity S is
/// overdue when it is open and first failed before `cutoffs[S]`.
fn cutoffs(deadlines: &Deadlines, now: Timestamp) -> [i64; 5] {
    let now_ms = now.as_millisecond();
    let cut = |d: Option<Duration>| match d {
        Some(d) => now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        None => i64::MIN,
    };
    [
        i64::MIN,
        cut(deadlines.low),
        cut(deadlines.medium),
        cut(deadlines.high),
        cut(deadlines.critical),
    ]
}

fn deadline_of(deadlines: &Deadlines, severity: i64) -> Option<Duration> {
    match Severity::try_from(i32::try_from(severity).unwrap_or(0)).ok()? {
        Severity::Critical => deadlines.critical,
        Severity::High => deadlines.high,
        Severity::Medium => deadlines.medium,
        Severity::Low => deadlines.low,
        Severity::Unspecified => None,
    }
}

fn is_overdue(cutoffs: &[i64; 5], severity: i64, first_failed_ms: i64, resolved: bool) -> bool {
    let index = usize::try_from(severity).unwrap_or(0);
    !resolved && index < cutoffs.len() && first_failed_ms < cutoffs[index]
}

impl Store {
    /// Opens (creating and migrating when needed) the store at `url`
    /// (`sqlite:///PATH` or `postgres://...`) and starts its writer task.
    pub async fn open(url: &str, deadlines: Deadlines) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let migrate_err = |source| StoreError::Migrate {
            url: url.to_string(),
            source,
        };
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::BadUrl(url.to_string()));
            }
            let path = PathBuf::from(path);
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                // The store holds the fleet's weaknesses: its directory is
                // private when the collector creates it.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|source| StoreError::CreateDir {
                        path: parent.to_path_buf(),
                        source,
                    })?;
            }
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory");
            // A new database file (and so its -wal and -shm files) is
            // readable by the collector's user only.
            if !path.exists() {
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path);
                if let Err(source) = created
                    && source.kind() != std::io::ErrorKind::AlreadyExists
                {
                    return Err(StoreError::CreateDir { path, source });
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .min_connections(1)
                .connect_with(options)
                .await
                .map_err(open_err)?;
            SQLITE_MIGRATOR.run(&pool).await.map_err(migrate_err)?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(open_err)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .min_connections(1)
                .connect_with(options)
                .await
                .map_err(open_err)?;
            POSTGRES_MIGRATOR.run(&pool).await.map_err(migrate_err)?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        let shards = match backend {
            Backend::Sqlite(_) => 1,
            Backend::Postgres(_) => POSTGRES_WRITERS,
        };
        let (writers, queues): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| mpsc::channel(QUEUE_DEPTH)).unzip();
        let (drift, _) = broadcast::channel(DRIFT_BROADCAST_DEPTH);
        let store = Store {
            inner: Arc::new(Inner {
                backend: backend.clone(),
                writers,
                drift: drift.clone(),
                deadlines,
            }),
        };
        // This store's name in its drift announcements: it publishes its own
        // stored events itself and relays only the other collectors'.
        let origin = format!("{:016x}", random_u64()?);
        if let Backend::Postgres(pool) = &backend {
            let listener =
                backend::postgres::listen(pool, Arc::downgrade(&store.inner), origin.clone())
                    .await?;
            tokio::spawn(listener);
        }
        for queue in queues {
            tokio::spawn(writer_task(
                backend.clone(),
                queue,
                drift.clone(),
                origin.clone(),
            ));
        }
        Ok(store)
    }

    /// The configured deadlines.
    pub fn deadlines(&self) -> &Deadlines {
        &self.inner.deadlines
    }

    async fn submit(&self, op: Op) -> Result<PendingWrite, StoreError> {
        let (reply, rx) = oneshot::channel();
        let writers = &self.inner.writers;
        writers[shard(op.host(), writers.len())]
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        Ok(PendingWrite { reply: rx })
    }

    /// Records an agent's Hello (identity, version, policies; connected now)
    /// and returns the highest sequence number stored for the host. When the
    /// agent's own `last_seq` is lower than that (its state was lost), the
    /// host's high-water mark is lowered to it so its new messages are kept.
    pub async fn hello(&self, hello: &Hello, at: Timestamp) -> Result<u64, StoreError> {
        let op = Op::Hello {
            host: hello.host.clone(),
            agent_version: hello.agent_version.clone(),
            policies: encode_policies(&hello.policies),
            agent_last_seq: seq_i64(hello.last_seq)?,
            at_ms: at.as_millisecond(),
        };
        match self.submit(op).await?.reply.await {
            Ok(Ok(Outcome::Hello(seq))) => Ok(seq),
            Ok(Ok(_)) => Ok(0),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Marks a host connected or not (the stream opened or ended).
    pub async fn set_connected(
        &self,
        host: &str,
        connected: bool,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let op = Op::Connected {
            host: host.to_string(),
            connected,
            at_ms: at.as_millisecond(),
        };
        self.submit(op).await?.stored().await.map(|_| ())
    }

    /// Queues a snapshot of `host`: once committed, the host's latest results
    /// are exactly the snapshot's, findings of failing rules are open and the
    /// others resolved. A (host, seq) stored before is a duplicate.
    pub async fn queue_snapshot(
        &self,
        host: &str,
        snapshot: &Snapshot,
        now: Timestamp,
    ) -> Result<PendingWrite, StoreError> {
        let report = snapshot
            .report
            .as_ref()
            .ok_or(StoreError::Incomplete("a snapshot without a report"))?;
        let at_ms = parse_ms(&report.started_at).unwrap_or(now.as_millisecond());
        // The last result of a (policy, rule) wins when a report repeats one.
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        let mut rows: Vec<ResultRow> = Vec::with_capacity(report.results.len());
        for result in &report.results {
            let key = format!("{}/{}", result.policy, result.rule);
            let row = result_row(
                result,
                snapshot.first_failed_at.get(&key).map(String::as_str),
                at_ms,
            );
            match index.get(&(result.policy.as_str(), result.rule.as_str())) {
                Some(&i) => rows[i] = row,
                None => {
                    index.insert((result.policy.as_str(), result.rule.as_str()), rows.len());
                    rows.push(row);
                }
            }
        }
        // The digests are computed here, on the connection's task, so the
        // writer only compares them.
        let mut keyed: Vec<(u64, u64, ResultRow)> = rows
            .into_iter()
            .map(|row| {
                let rule = digest::rule_digest(&row.policy, &row.rule);
                (
                    rule,
                    digest::row_digest(rule, row.first_failed_ms, &row.body),
                    row,
                )
            })
            .collect();
        keyed.sort_unstable_by_key(|(rule, _, _)| *rule);
        let digests =
            digest::Digests::from_pairs(keyed.iter().map(|(rule, row, _)| (*rule, *row)).collect());
        self.submit(Op::Snapshot {
            host: host.to_string(),
            seq: seq_i64(snapshot.seq)?,
            at_ms,
            policies: encode_policies(&report.policies),
            rows: keyed.into_iter().map(|(_, _, row)| row).collect(),
            digests,
        })
        .await
    }

    /// Queues a drift event of `host`: once committed, it is in the drift
    /// history, the rule's latest result is the event's, and its finding is
    /// opened or resolved.
    pub async fn queue_drift(
        &self,
        host: &str,
        event: &DriftEvent,
        now: Timestamp,
    ) -> Result<PendingWrite, StoreError> {
        let result = event
            .result
            .as_ref()
            .ok_or(StoreError::Incomplete("a drift event without a result"))?;
        let at_ms = parse_ms(&event.at).unwrap_or(now.as_millisecond());
        let mut event = event.clone();
        event.hostname = host.to_string();
        self.submit(Op::Drift {
            host: host.to_string(),
            seq: seq_i64(event.seq)?,
            at_ms,
            kind: i64::from(event.kind),
            row: result_row(result, None, at_ms),
            body: event.encode_to_vec(),
            event: Box::new(event),
        })
        .await
    }

    /// Stores a snapshot and waits for the commit.
    pub async fn store_snapshot(
        &self,
        host: &str,
        snapshot: &Snapshot,
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        self.queue_snapshot(host, snapshot, now)
            .await?
            .stored()
            .await
    }

    /// Stores a drift event and waits for the commit.
    pub async fn store_drift(
        &self,
        host: &str,
        event: &DriftEvent,
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        self.queue_drift(host, event, now).await?.stored().await
    }

    /// Live drift events from every agent (of every collector sharing a
    /// PostgreSQL database), with `hostname` set, after they are stored.
    pub fn subscribe_drift(&self) -> broadcast::Receiver<DriftEvent> {
        self.inner.drift.subscribe()
    }

    /// The fleet at a glance, with overdue computed against `now`.
    pub async fn fleet_summary(&self, now: Timestamp) -> Result<FleetSummaryResponse, StoreError> {
        let cut = cutoffs(&self.inner.deadlines, now);
        match &self.inner.backend {
            Backend::Sqlite(pool) => {
                backend::sqlite::fleet_summary(pool, now, &cut, &self.inner.deadlines).await
            }
            Backend::Postgres(pool) => {
                backend::postgres::fleet_summary(pool, now, &cut, &self.inner.deadlines).await
            }
        }
    }

    /// Every host, sorted by name.
    pub async fn list_hosts(&self, now: Timestamp) -> Result<Vec<HostSummary>, StoreError> {
        let cut = cutoffs(&self.inner.deadlines, now);
        match &self.inner.backend {
            Backend::Sqlite(pool) => backend::sqlite::list_hosts(pool, &cut, "").await,
            Backend::Postgres(pool) => backend::postgres::list_hosts(pool, &cut, "").await,
        }
    }

    /// One host with its policies and all its latest results; `None` when unknown.
    pub async fn get_host(
        &self,
        host: &str,
        now: Timestamp,
    ) -> Result<Option<GetHostResponse>, StoreError> {
        if host.is_empty() {
            return Ok(None);
        }
        let cut = cutoffs(&self.inner.deadlines, now);
        match &self.inner.backend {
            Backend::Sqlite(pool) => backend::sqlite::get_host(pool, &cut, host).await,
            Backend::Postgres(pool) => backend::postgres::get_host(pool, &cut, host).await,
        }
    }

    /// Findings matching the request's filters, most severe first.
    pub async fn list_findings(
        &self,
        request: &ListFindingsRequest,
        now: Timestamp,
    ) -> Result<Vec<Finding>, StoreError> {
        let cut = cutoffs(&self.inner.deadlines, now);
        match &self.inner.backend {
            Backend::Sqlite(pool) => backend::sqlite::list_findings(pool, &cut, request).await,
            Backend::Postgres(pool) => backend::postgres::list_findings(pool, &cut, request).await,
        }
    }

    /// The drift history of one host with sequence numbers above `after_seq`,
    /// in order (at most `limit` events).
    pub async fn drift_history(
        &self,
        host: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<DriftEvent>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        match &self.inner.backend {
            Backend::Sqlite(pool) => {
                backend::sqlite::drift_history(pool, host, after, i64::from(limit)).await
            }
            Backend::Postgres(pool) => {
                backend::postgres::drift_history(pool, host, after, i64::from(limit)).await
            }
        }
    }

    /// Whether this store is PostgreSQL (shared by several collectors).
    pub fn is_postgres(&self) -> bool {
        matches!(self.inner.backend, Backend::Postgres(_))
    }
}

/// The writer of `host` among `shards`: the same one for as long as the
/// store is open (a host's writes must stay in order).
fn shard(host: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    // FNV-1a: stable, and spreads similar names (web-1, web-2).
    let hash = host.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % shards as u64) as usize
}

/// Eight random bytes from the operating system.
fn random_u64() -> Result<u64, StoreError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Random)?;
    Ok(u64::from_ne_bytes(bytes))
}

/// A writer: takes every write queued for it, commits them together, then
/// answers each and publishes the stored drift events. With PostgreSQL the
/// commit also announces them, as `origin`'s, to the other collectors.
async fn writer_task(
    backend: Backend,
    mut queue: mpsc::Receiver<WriteRequest>,
    publish: broadcast::Sender<DriftEvent>,
    origin: String,
) {
    let mut batch: Vec<WriteRequest> = Vec::with_capacity(256);
    while let Some(first) = queue.recv().await {
        let mut weight = first.op.weight();
        batch.push(first);
        while batch.len() < MAX_BATCH_OPS && weight < MAX_BATCH_RESULTS {
            match queue.try_recv() {
                Ok(next) => {
                    weight += next.op.weight();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let ops: Vec<&Op> = batch.iter().map(|r| &r.op).collect();
        let outcomes = match &backend {
            Backend::Sqlite(pool) => backend::sqlite::apply_batch(pool, &ops, &origin).await,
            Backend::Postgres(pool) => backend::postgres::apply_batch(pool, &ops, &origin).await,
        };
        for (request, outcome) in batch.drain(..).zip(outcomes) {
            if let (Ok(Outcome::Stored(Stored::New)), Op::Drift { event, .. }) =
                (&outcome, &request.op)
            {
                let _ = publish.send((**event).clone());
            }
            let _ = request.reply.send(outcome);
        }
    }
}
