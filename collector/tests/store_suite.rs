//! One store test suite, run against both backends: SQLite in a temporary
//! directory and a real PostgreSQL cluster started privately for the test
//! (Unix socket only, in its own temporary directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hardend_collector::store::{Store, StoreError, Stored};
use hardend_policy::config::Deadlines;
use hardend_proto::{
    DriftEvent, DriftKind, Hello, ListFindingsRequest, PolicyRef, Report, RuleResult, Severity,
    Snapshot, Status,
};
use jiff::Timestamp;

// ---------------------------------------------------------------------------
// Requiring real components (as `hardend_tests::require`).

fn fast_subset() -> bool {
    std::env::var_os("HARDEND_FAST_TESTS").is_some_and(|v| v == "1")
}

fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if fast_subset() {
        eprintln!(
            "SKIP: {what} is not available and HARDEND_FAST_TESTS=1 asked for the fast subset"
        );
        return false;
    }
    panic!(
        "{what} is required by this test and is missing (scripts/install-deps installs it; or set HARDEND_FAST_TESTS=1 for the fast subset)"
    );
}

// ---------------------------------------------------------------------------
// A private PostgreSQL cluster.

fn postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

impl PgCluster {
    fn start(bin: PathBuf) -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix("hardend-pg-")
            .tempdir()
            .expect("tempdir");
        let status = Command::new("chown")
            .args(["postgres:", &dir.path().to_string_lossy()])
            .status()
            .expect("chown");
        assert!(status.success(), "chown the cluster directory to postgres");
        let data = dir.path().join("data");
        let out = as_postgres(&bin.join("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = 5432;
        let options = format!(
            "-k {} -p {port} -c listen_addresses='' -c fsync=off",
            dir.path().display()
        );
        let out = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .expect("run pg_ctl start");
        let cluster = PgCluster { dir, bin, port };
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(cluster.dir.path().join("log")).unwrap_or_default()
        );
        cluster
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres:///{database}?host={}&port={}&user=postgres",
            self.dir.path().display(),
            self.port
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Where each case gets a fresh, empty store.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(PgCluster),
}

impl Db {
    async fn fresh(&self, name: &str) -> Store {
        let deadlines = Deadlines::default();
        match self {
            Db::Sqlite(dir) => {
                let url = format!(
                    "sqlite://{}",
                    dir.path().join(format!("{name}.db")).display()
                );
                Store::open(&url, deadlines)
                    .await
                    .expect("open SQLite store")
            }
            Db::Postgres(cluster) => {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
                    .await
                    .expect("connect to the cluster");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create a database");
                Store::open(&cluster.url(name), deadlines)
                    .await
                    .expect("open PostgreSQL store")
            }
        }
    }
}

impl Db {
    /// Runs `sql` on the database of the case `name`, behind the store's back.
    async fn execute(&self, name: &str, sql: &'static str) {
        use sqlx::Connection;
        match self {
            Db::Sqlite(dir) => {
                let url = format!(
                    "sqlite://{}",
                    dir.path().join(format!("{name}.db")).display()
                );
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
            Db::Postgres(cluster) => {
                let mut conn = sqlx::PgConnection::connect(&cluster.url(name))
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Messages.

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn result(policy: &str, rule: &str, severity: Severity, status: Status) -> RuleResult {
    RuleResult {
        policy: policy.to_string(),
        rule: rule.to_string(),
        title: format!("{rule} title"),
        severity: severity as i32,
        status: status as i32,
        expected: Some("1".to_string()),
        actual: Some(if status == Status::Fail { "0" } else { "1" }.to_string()),
        ..Default::default()
    }
}

fn failing_since(mut r: RuleResult, since: &str) -> RuleResult {
    r.first_failed_at = Some(since.to_string());
    r
}

fn hello(host: &str, last_seq: u64) -> Hello {
    Hello {
        host: host.to_string(),
        agent_version: "0.1.0".to_string(),
        policies: vec![PolicyRef {
            id: "base".to_string(),
            version: "1".to_string(),
        }],
        last_seq,
    }
}

fn snapshot(seq: u64, at: &str, results: Vec<RuleResult>) -> Snapshot {
    Snapshot {
        seq,
        report: Some(Report {
            schema: "hardend.report/v1".to_string(),
            started_at: at.to_string(),
            policies: vec![PolicyRef {
                id: "base".to_string(),
                version: "1".to_string(),
            }],
            results,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn drift(seq: u64, at: &str, result: RuleResult) -> DriftEvent {
    let kind = if result.status == Status::Fail as i32 {
        DriftKind::Failing
    } else {
        DriftKind::Passing
    };
    DriftEvent {
        seq,
        at: at.to_string(),
        kind: kind as i32,
        result: Some(result),
        ..Default::default()
    }
}

const T0: &str = "2026-01-01T00:00:00Z";

fn open_rules(findings: &[hardend_proto::Finding]) -> Vec<String> {
    let mut rules: Vec<String> = findings
        .iter()
        .map(|f| format!("{}:{}/{}", f.host, f.policy, f.rule))
        .collect();
    rules.sort();
    rules
}

fn all() -> ListFindingsRequest {
    ListFindingsRequest::default()
}

// ---------------------------------------------------------------------------
// The cases.

async fn dedupe(db: &Db) {
    let store = db.fresh("dedupe").await;
    let now = ts(T0);
    // A message for a host that has not said Hello is refused.
    let err = store
        .store_drift(
            "ghost",
            &drift(1, T0, result("base", "a", Severity::High, Status::Fail)),
            now,
        )
        .await
        .expect_err("unknown host");
    assert!(matches!(err, StoreError::UnknownHost(_)), "{err}");

    assert_eq!(
        store.hello(&hello("web-1", 0), now).await.expect("hello"),
        0
    );
    let event = drift(1, T0, result("base", "a", Severity::High, Status::Fail));
    assert_eq!(
        store
            .store_drift("web-1", &event, now)
            .await
            .expect("drift"),
        Stored::New
    );
    assert_eq!(
        store
            .store_drift("web-1", &event, now)
            .await
            .expect("resend"),
        Stored::Duplicate
    );
    // A snapshot reusing a stored seq is a duplicate too and changes nothing.
    let stale = snapshot(
        1,
        T0,
        vec![result("base", "a", Severity::High, Status::Pass)],
    );
    assert_eq!(
        store
            .store_snapshot("web-1", &stale, now)
            .await
            .expect("snapshot"),
        Stored::Duplicate
    );
    assert_eq!(
        open_rules(&store.list_findings(&all(), now).await.expect("findings")),
        ["web-1:base/a"]
    );
    let later = drift(2, T0, result("base", "b", Severity::Low, Status::Fail));
    assert_eq!(
        store
            .store_drift("web-1", &later, now)
            .await
            .expect("drift 2"),
        Stored::New
    );
    assert_eq!(
        store.store_drift("web-1", &event, now).await.expect("old"),
        Stored::Duplicate
    );

    let history = store.drift_history("web-1", 0, 100).await.expect("history");
    assert_eq!(history.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert!(history.iter().all(|e| e.hostname == "web-1"));

    // Reconnecting tells the agent what is stored.
    assert_eq!(
        store
            .hello(&hello("web-1", 5), now)
            .await
            .expect("hello again"),
        2
    );
    let hosts = store.list_hosts(now).await.expect("hosts");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].last_seq, 2);
    assert!(hosts[0].connected);
    store
        .set_connected("web-1", false, now)
        .await
        .expect("disconnect");
    assert!(!store.list_hosts(now).await.expect("hosts")[0].connected);

    // An agent that lost its state starts again from 1: its new messages count.
    assert_eq!(
        store.hello(&hello("web-1", 0), now).await.expect("reset"),
        0
    );
    let fresh = drift(1, T0, result("base", "b", Severity::Low, Status::Pass));
    assert_eq!(
        store
            .store_drift("web-1", &fresh, now)
            .await
            .expect("after reset"),
        Stored::New
    );
}

async fn snapshot_replace(db: &Db) {
    let store = db.fresh("snapshots").await;
    let now = ts("2026-01-01T01:00:00Z");
    store.hello(&hello("db-1", 0), now).await.expect("hello");
    let first = snapshot(
        1,
        T0,
        vec![
            result("base", "a", Severity::Critical, Status::Fail),
            result("base", "b", Severity::Medium, Status::Pass),
            result("base", "c", Severity::High, Status::Fail),
        ],
    );
    assert_eq!(
        store
            .store_snapshot("db-1", &first, now)
            .await
            .expect("first"),
        Stored::New
    );
    let open = store.list_findings(&all(), now).await.expect("findings");
    assert_eq!(open_rules(&open), ["db-1:base/a", "db-1:base/c"]);
    // Most severe first, opened at the snapshot's time when the agent gave none.
    assert_eq!(open[0].rule, "a");
    assert_eq!(open[0].first_failed_at, T0);
    assert_eq!(open[0].status, Status::Fail as i32);
    assert_eq!(open[0].actual.as_deref(), Some("0"));

    let second = snapshot(
        2,
        "2026-01-01T00:30:00Z",
        vec![
            result("base", "a", Severity::Critical, Status::Pass),
            result("base", "c", Severity::High, Status::Fail),
            failing_since(
                result("base", "d", Severity::Low, Status::Fail),
                "2025-12-31T23:00:00Z",
            ),
        ],
    );
    assert_eq!(
        store
            .store_snapshot("db-1", &second, now)
            .await
            .expect("second"),
        Stored::New
    );
    let open = store.list_findings(&all(), now).await.expect("findings");
    assert_eq!(open_rules(&open), ["db-1:base/c", "db-1:base/d"]);
    let c = open.iter().find(|f| f.rule == "c").expect("c");
    assert_eq!(
        c.first_failed_at, T0,
        "a finding that stays open keeps its start"
    );
    let d = open.iter().find(|f| f.rule == "d").expect("d");
    assert_eq!(
        d.first_failed_at, "2025-12-31T23:00:00Z",
        "the agent's first-failed time"
    );

    let everything = store
        .list_findings(
            &ListFindingsRequest {
                include_resolved: true,
                ..all()
            },
            now,
        )
        .await
        .expect("all findings");
    let a = everything.iter().find(|f| f.rule == "a").expect("a");
    assert_eq!(a.resolved_at, "2026-01-01T00:30:00Z");
    assert_eq!(a.status, Status::Pass as i32);

    // The latest results are exactly the second snapshot's.
    let host = store
        .get_host("db-1", now)
        .await
        .expect("get")
        .expect("known");
    let rules: Vec<&str> = host.results.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(rules, ["a", "c", "d"]);
    let summary = host.host.expect("summary").summary.expect("counts");
    assert_eq!((summary.total, summary.pass, summary.fail), (3, 1, 2));
    assert_eq!(host.policies.len(), 1);
    assert!(store.get_host("nobody", now).await.expect("get").is_none());

    // A rule that fails again after resolving opens a new finding.
    let third = snapshot(
        3,
        "2026-01-01T00:40:00Z",
        vec![result("base", "a", Severity::Critical, Status::Fail)],
    );
    store
        .store_snapshot("db-1", &third, now)
        .await
        .expect("third");
    let open = store.list_findings(&all(), now).await.expect("findings");
    assert_eq!(open_rules(&open), ["db-1:base/a"]);
    assert_eq!(open[0].first_failed_at, "2026-01-01T00:40:00Z");
    let everything = store
        .list_findings(
            &ListFindingsRequest {
                include_resolved: true,
                ..all()
            },
            now,
        )
        .await
        .expect("all findings");
    assert_eq!(everything.len(), 4, "a twice, c and d resolved");
}

async fn drift_updates(db: &Db) {
    let store = db.fresh("drift").await;
    let now = ts("2026-01-01T02:00:00Z");
    store.hello(&hello("app-1", 0), now).await.expect("hello");
    let base = snapshot(
        1,
        T0,
        vec![result("base", "ssh", Severity::High, Status::Pass)],
    );
    store
        .store_snapshot("app-1", &base, now)
        .await
        .expect("snapshot");
    assert!(
        store
            .list_findings(&all(), now)
            .await
            .expect("findings")
            .is_empty()
    );

    let mut watch = store.subscribe_drift();
    let failing = drift(
        2,
        "2026-01-01T00:10:00Z",
        result("base", "ssh", Severity::High, Status::Fail),
    );
    store
        .store_drift("app-1", &failing, now)
        .await
        .expect("failing");
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.recv())
        .await
        .expect("drift is announced within 5 s")
        .expect("an event");
    assert_eq!((seen.hostname.as_str(), seen.seq), ("app-1", 2));

    let open = store.list_findings(&all(), now).await.expect("findings");
    assert_eq!(open_rules(&open), ["app-1:base/ssh"]);
    assert_eq!(open[0].first_failed_at, "2026-01-01T00:10:00Z");
    let host = store
        .get_host("app-1", now)
        .await
        .expect("get")
        .expect("known");
    assert_eq!(host.results[0].status, Status::Fail as i32);
    assert_eq!(host.results[0].first_failed_at, "2026-01-01T00:10:00Z");

    // A new rule by drift alone is added to the latest results.
    let other = drift(
        3,
        "2026-01-01T00:11:00Z",
        result("base", "new", Severity::Low, Status::Pass),
    );
    store
        .store_drift("app-1", &other, now)
        .await
        .expect("other");
    let host = store
        .get_host("app-1", now)
        .await
        .expect("get")
        .expect("known");
    assert_eq!(host.results.len(), 2);

    let passing = drift(
        4,
        "2026-01-01T00:40:00Z",
        result("base", "ssh", Severity::High, Status::Pass),
    );
    store
        .store_drift("app-1", &passing, now)
        .await
        .expect("passing");
    assert!(
        store
            .list_findings(&all(), now)
            .await
            .expect("findings")
            .is_empty()
    );
    let host = store
        .get_host("app-1", now)
        .await
        .expect("get")
        .expect("known");
    assert_eq!(host.results[1].rule, "ssh");
    assert_eq!(host.results[1].status, Status::Pass as i32);
    let history = store.drift_history("app-1", 2, 10).await.expect("history");
    assert_eq!(history.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
}

async fn time_to_fix_and_overdue(db: &Db) {
    let store = db.fresh("deadlines").await;
    let now = ts("2026-01-05T00:00:00Z");
    for host in ["h1", "h2"] {
        store.hello(&hello(host, 0), now).await.expect("hello");
    }
    // h1: critical failing 5 h (over 4 h), high failing 5 h (under 24 h),
    // medium failing 80 h (over 72 h), low failing for days (no deadline).
    let h1 = snapshot(
        1,
        "2026-01-04T23:00:00Z",
        vec![
            failing_since(
                result("base", "crit", Severity::Critical, Status::Fail),
                "2026-01-04T19:00:00Z",
            ),
            failing_since(
                result("base", "high", Severity::High, Status::Fail),
                "2026-01-04T19:00:00Z",
            ),
            failing_since(
                result("kern", "med", Severity::Medium, Status::Fail),
                "2026-01-01T16:00:00Z",
            ),
            failing_since(
                result("kern", "low", Severity::Low, Status::Fail),
                "2025-12-01T00:00:00Z",
            ),
            result("kern", "ok", Severity::High, Status::Pass),
        ],
    );
    store.store_snapshot("h1", &h1, now).await.expect("h1");
    // h2: a critical finding fixed in 2 h and another in 4 h: mean 3 h.
    store
        .store_drift(
            "h2",
            &drift(
                1,
                "2026-01-04T10:00:00Z",
                result("base", "crit", Severity::Critical, Status::Fail),
            ),
            now,
        )
        .await
        .expect("fail");
    store
        .store_drift(
            "h2",
            &drift(
                2,
                "2026-01-04T12:00:00Z",
                result("base", "crit", Severity::Critical, Status::Pass),
            ),
            now,
        )
        .await
        .expect("fix");
    store
        .store_drift(
            "h2",
            &drift(
                3,
                "2026-01-04T13:00:00Z",
                result("base", "crit", Severity::Critical, Status::Fail),
            ),
            now,
        )
        .await
        .expect("fail again");
    store
        .store_drift(
            "h2",
            &drift(
                4,
                "2026-01-04T17:00:00Z",
                result("base", "crit", Severity::Critical, Status::Pass),
            ),
            now,
        )
        .await
        .expect("fix again");
    store
        .store_drift(
            "h2",
            &drift(
                5,
                "2026-01-04T18:00:00Z",
                result("base", "err", Severity::High, Status::Error),
            ),
            now,
        )
        .await
        .expect("error");

    let overdue = store
        .list_findings(
            &ListFindingsRequest {
                overdue_only: true,
                ..all()
            },
            now,
        )
        .await
        .expect("overdue");
    assert_eq!(open_rules(&overdue), ["h1:base/crit", "h1:kern/med"]);
    assert!(overdue.iter().all(|f| f.overdue));
    let open = store.list_findings(&all(), now).await.expect("open");
    assert_eq!(open.len(), 4, "an error opens nothing");
    assert!(
        !open
            .iter()
            .find(|f| f.rule == "high")
            .expect("high")
            .overdue
    );
    assert!(!open.iter().find(|f| f.rule == "low").expect("low").overdue);
    // Two hours earlier the critical finding was not yet overdue.
    let earlier = store
        .list_findings(
            &ListFindingsRequest {
                overdue_only: true,
                ..all()
            },
            ts("2026-01-04T22:00:00Z"),
        )
        .await
        .expect("earlier");
    assert_eq!(open_rules(&earlier), ["h1:kern/med"]);

    let summary = store.fleet_summary(now).await.expect("summary");
    assert_eq!(summary.hosts, 2);
    assert_eq!(summary.open_findings, 4);
    assert_eq!(summary.overdue_findings, 2);
    let crit = summary
        .severities
        .iter()
        .find(|s| s.severity == Severity::Critical as i32)
        .expect("critical");
    assert_eq!((crit.open, crit.overdue, crit.resolved), (1, 1, 2));
    assert!(
        (crit.mean_time_to_fix_seconds - 3.0 * 3600.0).abs() < 0.001,
        "{}",
        crit.mean_time_to_fix_seconds
    );
    assert_eq!(crit.deadline_seconds, 4 * 3600);
    let low = summary
        .severities
        .iter()
        .find(|s| s.severity == Severity::Low as i32)
        .expect("low");
    assert_eq!((low.open, low.overdue, low.deadline_seconds), (1, 0, 0));
    let base = summary
        .policies
        .iter()
        .find(|p| p.policy == "base")
        .expect("base");
    // base: h1 crit fail, h1 high fail, h2 crit pass, h2 err error.
    assert_eq!((base.pass, base.fail, base.error), (1, 2, 1));
    assert!((base.score - 100.0 / 3.0).abs() < 0.001);
    let kern = summary
        .policies
        .iter()
        .find(|p| p.policy == "kern")
        .expect("kern");
    assert_eq!((kern.pass, kern.fail), (1, 2));

    let hosts = store.list_hosts(now).await.expect("hosts");
    let h1 = hosts.iter().find(|h| h.host == "h1").expect("h1");
    assert_eq!(h1.overdue, 2);
    assert_eq!(h1.summary.as_ref().expect("summary").fail, 4);
    assert_eq!(
        hosts.iter().find(|h| h.host == "h2").expect("h2").overdue,
        0
    );
}

async fn filters(db: &Db) {
    let store = db.fresh("filters").await;
    let now = ts("2026-01-01T01:00:00Z");
    for host in ["a1", "a2"] {
        store.hello(&hello(host, 0), now).await.expect("hello");
        let snap = snapshot(
            1,
            T0,
            vec![
                result("ssh", "root-login", Severity::Critical, Status::Fail),
                result("ssh", "ciphers", Severity::Medium, Status::Fail),
                result("kernel", "syncookies", Severity::High, Status::Fail),
            ],
        );
        store
            .store_snapshot(host, &snap, now)
            .await
            .expect("snapshot");
    }
    let count = |req: ListFindingsRequest| {
        let store = store.clone();
        async move {
            store
                .list_findings(&req, now)
                .await
                .expect("findings")
                .len()
        }
    };
    assert_eq!(count(all()).await, 6);
    assert_eq!(
        count(ListFindingsRequest {
            severity: Severity::Critical as i32,
            ..all()
        })
        .await,
        2
    );
    assert_eq!(
        count(ListFindingsRequest {
            policy: "ssh".into(),
            ..all()
        })
        .await,
        4
    );
    assert_eq!(
        count(ListFindingsRequest {
            rule: "syncookies".into(),
            ..all()
        })
        .await,
        2
    );
    assert_eq!(
        count(ListFindingsRequest {
            host: "a2".into(),
            ..all()
        })
        .await,
        3
    );
    assert_eq!(
        count(ListFindingsRequest {
            host: "a2".into(),
            policy: "ssh".into(),
            severity: Severity::Medium as i32,
            ..all()
        })
        .await,
        1
    );
    assert_eq!(
        count(ListFindingsRequest {
            policy: "nope".into(),
            ..all()
        })
        .await,
        0
    );
    // A value that looks like SQL is only a value.
    assert_eq!(
        count(ListFindingsRequest {
            host: "' OR 1=1 --".into(),
            ..all()
        })
        .await,
        0
    );
}

/// Two collectors sharing one PostgreSQL database: a drift stored through
/// one is streamed by the other (LISTEN/NOTIFY), and a message resent to the
/// other collector is still a duplicate; the collector that stored the
/// events streams each of them once too.
async fn shared_database(db: &Db) {
    let Db::Postgres(cluster) = db else {
        return;
    };
    let first = db.fresh("shared").await;
    let second = Store::open(&cluster.url("shared"), Deadlines::default())
        .await
        .expect("a second collector");
    let mut watch = second.subscribe_drift();
    let mut own = first.subscribe_drift();
    let now = ts(T0);
    first.hello(&hello("edge-1", 0), now).await.expect("hello");
    let event = drift(1, T0, result("base", "a", Severity::High, Status::Fail));
    assert_eq!(
        first
            .store_drift("edge-1", &event, now)
            .await
            .expect("drift"),
        Stored::New
    );
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.recv())
        .await
        .expect("the other collector streams it within 5 s")
        .expect("an event");
    assert_eq!((seen.hostname.as_str(), seen.seq), ("edge-1", 1));
    assert_eq!(
        second
            .store_drift("edge-1", &event, now)
            .await
            .expect("resend"),
        Stored::Duplicate
    );
    // Many events at once reach the other collector, each once, in order.
    let mut pending = Vec::new();
    for seq in 2..=301u64 {
        let rule = format!("r{}", seq % 100);
        let event = drift(seq, T0, result("base", &rule, Severity::Low, Status::Fail));
        pending.push(
            first
                .queue_drift("edge-1", &event, now)
                .await
                .expect("queue"),
        );
    }
    for p in pending {
        assert_eq!(p.stored().await.expect("stored"), Stored::New);
    }
    let mut relayed = Vec::new();
    while relayed.len() < 300 {
        let seen = tokio::time::timeout(Duration::from_secs(5), watch.recv())
            .await
            .expect("the other collector streams them within 5 s")
            .expect("an event");
        assert_eq!(seen.hostname, "edge-1");
        relayed.push(seen.seq);
    }
    assert_eq!(relayed, (2..=301).collect::<Vec<u64>>());
    let mut streamed = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(500), own.recv()).await {
            Ok(Ok(seen)) => {
                assert_eq!(seen.hostname, "edge-1");
                streamed.push(seen.seq);
            }
            Ok(Err(err)) => panic!("the storing collector's stream: {err}"),
            // Nothing more within half a second: no event comes twice.
            Err(_) => break,
        }
    }
    assert_eq!(streamed, (1..=301).collect::<Vec<u64>>());
    assert_eq!(
        second
            .list_findings(&all(), now)
            .await
            .expect("findings")
            .len(),
        101
    );
}

/// Many writes queued at once are committed together: order per host is kept
/// (a rule failing, passing and failing again in one batch leaves one
/// resolved and one open finding), and a resend within the batch is a
/// duplicate.
async fn batched(db: &Db) {
    let store = db.fresh("batched").await;
    let now = ts("2026-01-02T00:00:00Z");
    for host in ["b1", "b2", "b3"] {
        store.hello(&hello(host, 0), now).await.expect("hello");
    }
    let mut pending = Vec::new();
    for host in ["b1", "b2", "b3"] {
        for seq in 1..=60u64 {
            // Rules r0..r9; each rule flips between failing and passing.
            let status = if (seq / 10) % 2 == 0 {
                Status::Fail
            } else {
                Status::Pass
            };
            let at = format!("2026-01-01T00:{:02}:00Z", seq % 60);
            let event = drift(
                seq,
                &at,
                result("base", &format!("r{}", seq % 10), Severity::High, status),
            );
            pending.push((
                seq,
                store.queue_drift(host, &event, now).await.expect("queue"),
            ));
            if seq == 30 {
                // A resend in the middle of the batch.
                let again = drift(29, &at, result("base", "r9", Severity::High, Status::Pass));
                pending.push((
                    0,
                    store.queue_drift(host, &again, now).await.expect("queue"),
                ));
            }
        }
    }
    let mut new = 0;
    for (seq, p) in pending {
        let stored = p.stored().await.expect("stored");
        if seq == 0 {
            assert_eq!(stored, Stored::Duplicate);
        } else {
            assert_eq!(stored, Stored::New, "seq {seq}");
            new += 1;
        }
    }
    assert_eq!(new, 180);
    for host in ["b1", "b2", "b3"] {
        let history = store.drift_history(host, 0, 1000).await.expect("history");
        assert_eq!(
            history.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=60).collect::<Vec<u64>>()
        );
    }
    // Seqs 1..9 fail r1..r9, 10..19 pass r0..r9, 20..29 fail, 30..39 pass,
    // 40..49 fail, 50..59 pass, and 60 fails r0. So r1..r9 each have three
    // resolved findings; r0 has two resolved and one open.
    let open = store.list_findings(&all(), now).await.expect("open");
    assert_eq!(
        open_rules(&open),
        ["b1:base/r0", "b2:base/r0", "b3:base/r0"]
    );
    let everything = store
        .list_findings(
            &ListFindingsRequest {
                include_resolved: true,
                host: "b2".into(),
                ..all()
            },
            now,
        )
        .await
        .expect("all");
    assert_eq!(everything.len(), 9 * 3 + 3);
    let host = store
        .get_host("b3", now)
        .await
        .expect("get")
        .expect("known");
    assert_eq!(host.results.len(), 10);
    assert_eq!(host.host.expect("summary").last_seq, 60);
}

/// What `get_host` shows of a result, to compare with what was sent.
fn shown(
    f: &hardend_proto::Finding,
) -> (
    String,
    String,
    String,
    i32,
    i32,
    Option<String>,
    Option<String>,
    usize,
) {
    (
        f.policy.clone(),
        f.rule.clone(),
        f.title.clone(),
        f.severity,
        f.status,
        f.expected.clone(),
        f.actual.clone(),
        f.evidence.len(),
    )
}

fn sent(
    r: &RuleResult,
) -> (
    String,
    String,
    String,
    i32,
    i32,
    Option<String>,
    Option<String>,
    usize,
) {
    (
        r.policy.clone(),
        r.rule.clone(),
        r.title.clone(),
        r.severity,
        r.status,
        r.expected.clone(),
        r.actual.clone(),
        r.evidence.len(),
    )
}

/// The host's latest results are exactly `results`.
async fn assert_results(store: &Store, host: &str, results: &[RuleResult], now: Timestamp) {
    let mut expected: Vec<_> = results.iter().map(sent).collect();
    expected.sort();
    let got = store
        .get_host(host, now)
        .await
        .expect("get")
        .expect("known");
    let mut got: Vec<_> = got.results.iter().map(shown).collect();
    got.sort();
    assert_eq!(
        got, expected,
        "{host}: the latest results are the snapshot's"
    );
}

/// A snapshot that changes some results, leaves others as they were,
/// removes rules and adds one: the latest results are exactly the new
/// snapshot's, findings of the unchanged failing rule stay open with their
/// start, the removed failing rule's finding is resolved.
async fn snapshot_changes_a_subset(db: &Db) {
    let store = db.fresh("subset").await;
    let now = ts("2026-01-01T02:00:00Z");
    store.hello(&hello("s-1", 0), now).await.expect("hello");
    let mut first = vec![
        result("base", "same-fail", Severity::High, Status::Fail),
        result("base", "same-pass", Severity::Low, Status::Pass),
        result("base", "to-pass", Severity::Critical, Status::Fail),
        result("base", "to-fail", Severity::Medium, Status::Pass),
        result("base", "retitled", Severity::High, Status::Fail),
        result("base", "gone-fail", Severity::High, Status::Fail),
        result("base", "gone-pass", Severity::High, Status::Pass),
    ];
    for (i, r) in first.iter_mut().enumerate() {
        r.evidence = vec![hardend_proto::Evidence {
            path: format!("/etc/file-{i}"),
            line: Some(i as u32),
            text: Some(format!("line {i}")),
        }];
    }
    store
        .store_snapshot("s-1", &snapshot(1, T0, first.clone()), now)
        .await
        .expect("first");
    assert_results(&store, "s-1", &first, now).await;
    assert_eq!(
        open_rules(&store.list_findings(&all(), now).await.expect("findings")),
        [
            "s-1:base/gone-fail",
            "s-1:base/retitled",
            "s-1:base/same-fail",
            "s-1:base/to-pass"
        ]
    );

    let at = "2026-01-01T00:30:00Z";
    let mut second: Vec<RuleResult> = first[..5].to_vec();
    second[2] = result("base", "to-pass", Severity::Critical, Status::Pass);
    second[3] = result("base", "to-fail", Severity::Medium, Status::Fail);
    second[4].title = "a new title".to_string();
    second[4].severity = Severity::Critical as i32;
    second.push(result("extra", "new", Severity::Low, Status::Fail));
    store
        .store_snapshot("s-1", &snapshot(2, at, second.clone()), now)
        .await
        .expect("second");
    assert_results(&store, "s-1", &second, now).await;

    let open = store.list_findings(&all(), now).await.expect("findings");
    assert_eq!(
        open_rules(&open),
        [
            "s-1:base/retitled",
            "s-1:base/same-fail",
            "s-1:base/to-fail",
            "s-1:extra/new"
        ]
    );
    let find = |rule: &str| open.iter().find(|f| f.rule == rule).expect(rule).clone();
    assert_eq!(
        find("same-fail").first_failed_at,
        T0,
        "unchanged: same finding"
    );
    assert_eq!(find("retitled").first_failed_at, T0);
    assert_eq!(find("retitled").title, "a new title");
    assert_eq!(find("retitled").severity, Severity::Critical as i32);
    assert_eq!(find("to-fail").first_failed_at, at);
    let everything = store
        .list_findings(
            &ListFindingsRequest {
                include_resolved: true,
                ..all()
            },
            now,
        )
        .await
        .expect("all findings");
    assert_eq!(everything.len(), 6, "four open, two resolved");
    for rule in ["to-pass", "gone-fail"] {
        let f = everything.iter().find(|f| f.rule == rule).expect(rule);
        assert_eq!(f.resolved_at, at, "{rule} is resolved by the snapshot");
    }
    let summary = store.list_hosts(now).await.expect("hosts")[0]
        .summary
        .expect("counts");
    assert_eq!((summary.total, summary.pass, summary.fail), (6, 2, 4));

    // The same snapshot again under a new seq changes nothing.
    store
        .store_snapshot(
            "s-1",
            &snapshot(3, "2026-01-01T00:40:00Z", second.clone()),
            now,
        )
        .await
        .expect("third");
    assert_results(&store, "s-1", &second, now).await;
    assert_eq!(
        store
            .list_findings(
                &ListFindingsRequest {
                    include_resolved: true,
                    ..all()
                },
                now
            )
            .await
            .expect("all findings")
            .len(),
        6
    );

    // A snapshot that drops every rule leaves nothing and resolves all.
    store
        .store_snapshot("s-1", &snapshot(4, "2026-01-01T00:50:00Z", vec![]), now)
        .await
        .expect("empty");
    assert_results(&store, "s-1", &[], now).await;
    assert!(
        store
            .list_findings(&all(), now)
            .await
            .expect("findings")
            .is_empty()
    );
}

/// A drift changes a rule between two identical snapshots: the second
/// snapshot restores the rule (it differs from what the drift stored), and
/// reopens its finding.
async fn snapshot_after_drift(db: &Db) {
    let store = db.fresh("after_drift").await;
    let now = ts("2026-01-01T02:00:00Z");
    store.hello(&hello("d-1", 0), now).await.expect("hello");
    let results = vec![
        result("base", "a", Severity::High, Status::Fail),
        result("base", "b", Severity::High, Status::Pass),
    ];
    store
        .store_snapshot("d-1", &snapshot(1, T0, results.clone()), now)
        .await
        .expect("first");
    store
        .store_drift(
            "d-1",
            &drift(
                2,
                "2026-01-01T00:10:00Z",
                result("base", "a", Severity::High, Status::Pass),
            ),
            now,
        )
        .await
        .expect("drift");
    assert!(
        store
            .list_findings(&all(), now)
            .await
            .expect("findings")
            .is_empty()
    );
    store
        .store_snapshot(
            "d-1",
            &snapshot(3, "2026-01-01T00:20:00Z", results.clone()),
            now,
        )
        .await
        .expect("second");
    assert_results(&store, "d-1", &results, now).await;
    let open = store.list_findings(&all(), now).await.expect("findings");
    assert_eq!(open_rules(&open), ["d-1:base/a"]);
    assert_eq!(open[0].first_failed_at, "2026-01-01T00:20:00Z");
}

/// Snapshots of many hosts queued at once, several per host, are committed
/// together in order per host: each host ends with its last snapshot's
/// results, a rule failing, passing and failing again across its snapshots
/// leaves one resolved and one open finding, a resend is a duplicate and a
/// host that has not said Hello is refused without sinking the others.
async fn snapshots_batched(db: &Db) {
    let store = db.fresh("snapshots_batched").await;
    let now = ts("2026-01-02T00:00:00Z");
    let hosts: Vec<String> = (0..20).map(|i| format!("n{i:02}")).collect();
    for host in &hosts {
        store.hello(&hello(host, 0), now).await.expect("hello");
    }
    let results = |host: usize, seq: u64| -> Vec<RuleResult> {
        (0..30)
            .map(|rule| {
                // Rule 0 fails in odd snapshots; rule r > 0 fails when
                // (host + rule + seq) % 5 == 0; the last snapshot drops
                // rules 25 and up.
                let fail = if rule == 0 {
                    seq % 2 == 1
                } else {
                    (host + rule + seq as usize).is_multiple_of(5)
                };
                let status = if fail { Status::Fail } else { Status::Pass };
                result("base", &format!("r{rule:02}"), Severity::Medium, status)
            })
            .filter(|r| seq < 3 || r.rule.as_str() < "r25")
            .collect()
    };
    let mut pending = Vec::new();
    for seq in 1..=3u64 {
        for (h, host) in hosts.iter().enumerate() {
            let at = format!("2026-01-01T00:{:02}:00Z", seq * 10);
            let snap = snapshot(seq, &at, results(h, seq));
            pending.push((
                Some(Stored::New),
                store.queue_snapshot(host, &snap, now).await.expect("queue"),
            ));
            if seq == 2 && h == 3 {
                pending.push((
                    Some(Stored::Duplicate),
                    store.queue_snapshot(host, &snap, now).await.expect("queue"),
                ));
                pending.push((
                    None,
                    store
                        .queue_snapshot("ghost", &snap, now)
                        .await
                        .expect("queue"),
                ));
            }
        }
    }
    for (expected, p) in pending {
        match expected {
            Some(expected) => assert_eq!(p.stored().await.expect("stored"), expected),
            None => {
                let err = p.stored().await.expect_err("unknown host");
                assert!(matches!(err, StoreError::UnknownHost(_)), "{err}");
            }
        }
    }
    for (h, host) in hosts.iter().enumerate() {
        assert_results(&store, host, &results(h, 3), now).await;
        let findings = store
            .list_findings(
                &ListFindingsRequest {
                    host: host.clone(),
                    rule: "r00".into(),
                    include_resolved: true,
                    ..all()
                },
                now,
            )
            .await
            .expect("findings");
        let mut life: Vec<(String, String)> = findings
            .iter()
            .map(|f| (f.first_failed_at.clone(), f.resolved_at.clone()))
            .collect();
        life.sort();
        assert_eq!(
            life,
            [
                (
                    "2026-01-01T00:10:00Z".to_string(),
                    "2026-01-01T00:20:00Z".to_string()
                ),
                ("2026-01-01T00:30:00Z".to_string(), String::new()),
            ],
            "{host}: r00 failed, passed, failed again"
        );
        let open: Vec<String> = store
            .list_findings(
                &ListFindingsRequest {
                    host: host.clone(),
                    ..all()
                },
                now,
            )
            .await
            .expect("findings")
            .into_iter()
            .map(|f| f.rule)
            .collect();
        let mut want: Vec<String> = results(h, 3)
            .into_iter()
            .filter(|r| r.status == Status::Fail as i32)
            .map(|r| r.rule)
            .collect();
        let mut open = open;
        open.sort();
        want.sort();
        assert_eq!(open, want, "{host}: open findings are the failing rules");
    }
    let hosts_now = store.list_hosts(now).await.expect("hosts");
    assert!(hosts_now.iter().all(|h| h.last_seq == 3));
}

/// The digests the store keeps of a host's results are only a shortcut: a
/// host whose digests are damaged, of another version or missing still
/// ends each snapshot with exactly the snapshot's results and findings.
async fn snapshot_with_damaged_digests(db: &Db) {
    let store = db.fresh("damaged_digests").await;
    let now = ts("2026-01-01T02:00:00Z");
    store.hello(&hello("g-1", 0), now).await.expect("hello");
    let first = vec![
        result("base", "a", Severity::High, Status::Fail),
        result("base", "b", Severity::High, Status::Pass),
        result("base", "c", Severity::Low, Status::Fail),
    ];
    let second = vec![
        result("base", "a", Severity::High, Status::Pass),
        result("base", "b", Severity::High, Status::Pass),
        result("base", "d", Severity::Medium, Status::Fail),
    ];
    let damage: [&'static str; 3] = [
        // Torn: a version byte and half a pair.
        "UPDATE hosts SET result_digests = X'0100000000000000' WHERE host = 'g-1'",
        // Another version.
        "UPDATE hosts SET result_digests = X'FF' WHERE host = 'g-1'",
        // Missing.
        "UPDATE hosts SET result_digests = NULL WHERE host = 'g-1'",
    ];
    let mut seq = 0;
    for sql in damage {
        for results in [&first, &second] {
            seq += 1;
            let at = format!("2026-01-01T00:{:02}:00Z", seq);
            store
                .store_snapshot("g-1", &snapshot(seq, &at, results.clone()), now)
                .await
                .expect("snapshot");
            assert_results(&store, "g-1", results, now).await;
            let failing: Vec<String> = results
                .iter()
                .filter(|r| r.status == Status::Fail as i32)
                .map(|r| format!("g-1:{}/{}", r.policy, r.rule))
                .collect();
            let open = store.list_findings(&all(), now).await.expect("findings");
            assert_eq!(open_rules(&open), failing, "{sql}");
            // PostgreSQL's bytea literal is written differently.
            let sql = if matches!(db, Db::Postgres(_)) {
                match sql {
                    s if s.contains("X'0100000000000000'") => {
                        "UPDATE hosts SET result_digests = '\\x0100000000000000' WHERE host = 'g-1'"
                    }
                    s if s.contains("X'FF'") => {
                        "UPDATE hosts SET result_digests = '\\xff' WHERE host = 'g-1'"
                    }
                    s => s,
                }
            } else {
                sql
            };
            db.execute("damaged_digests", sql).await;
        }
    }
}

async fn suite(db: Db) {
    dedupe(&db).await;
    snapshot_replace(&db).await;
    drift_updates(&db).await;
    time_to_fix_and_overdue(&db).await;
    filters(&db).await;
    shared_database(&db).await;
    batched(&db).await;
    snapshot_changes_a_subset(&db).await;
    snapshot_after_drift(&db).await;
    snapshots_batched(&db).await;
    snapshot_with_damaged_digests(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    suite(Db::Sqlite(dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_postgres() {
    let bin = postgres_bin();
    let available = bin.is_some() && is_root() && Path::new("/usr/sbin/runuser").exists();
    if !require(
        "PostgreSQL (initdb and pg_ctl under /usr/lib/postgresql, run as root)",
        available,
    ) {
        return;
    }
    let Some(bin) = bin else { return };
    let cluster = PgCluster::start(bin);
    suite(Db::Postgres(cluster)).await;
}

#[tokio::test]
async fn store_sqlite_file_and_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("var/lib/hardend-collector/hardend.db");
    let store = Store::open(&format!("sqlite://{}", db.display()), Deadlines::default())
        .await
        .expect("open");
    store.hello(&hello("p1", 0), ts(T0)).await.expect("hello");
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(db.parent().expect("parent")), 0o700);
    let wal = db.with_extension("db-wal");
    assert!(wal.exists(), "the store runs in WAL mode");
    assert_eq!(mode(&wal), 0o600);
    let err = Store::open("mysql://nope", Deadlines::default())
        .await
        .err()
        .expect("unsupported URL");
    assert!(matches!(err, StoreError::BadUrl(_)), "{err}");
}
