//! The store's queries and write logic, written once and compiled for each
//! backend (SQLite and PostgreSQL accept the same statements here: `$N`
//! parameters, `ON CONFLICT` upserts, partial unique indexes; the bulk
//! writes, whose SQL differs, are in `bulk`), plus PostgreSQL's
//! LISTEN/NOTIFY drift listener.

use super::bulk::{FindingRows, Keys, ResultRows};
use super::digest::{self, Digests};
use super::{
    DRIFT_CHANNEL, Op, Outcome, ResultRow, StoreError, Stored, deadline_of, decode_policies,
    format_ms, is_overdue,
};
use hardend_policy::config::Deadlines;
use hardend_proto::{
    DriftEvent, Finding, FleetSummaryResponse, GetHostResponse, HostSummary, ListFindingsRequest,
    PolicyCompliance, RuleResult, Severity, SeverityCounts, Status, Summary,
};
use jiff::Timestamp;
use prost::Message;
use std::collections::{HashMap, HashSet};

const FAIL: i64 = Status::Fail as i64;
const ERROR: i64 = Status::Error as i64;

/// A finding is overdue when open and first failed before its severity's
/// cut-off, which are parameters $1..$5 (indexed by severity number).
const OVERDUE: &str = "(f.resolved_ms IS NULL AND f.first_failed_ms < (CASE f.severity WHEN 4 THEN $5 WHEN 3 THEN $4 WHEN 2 THEN $3 WHEN 1 THEN $2 ELSE $1 END))";

pub(super) fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// Whether a status resolves a finding (the rule passes again, or no longer
/// applies, or is waived).
fn resolves(status: i64) -> bool {
    status == Status::Pass as i64
        || status == Status::NotApplicable as i64
        || status == Status::Waived as i64
}

fn summary_add(summary: &mut Summary, status: i64, count: i64) {
    let n = u32::try_from(count).unwrap_or(u32::MAX);
    summary.total = summary.total.saturating_add(n);
    let slot = match Status::try_from(i32::try_from(status).unwrap_or(0)) {
        Ok(Status::Pass) => &mut summary.pass,
        Ok(Status::Fail) => &mut summary.fail,
        Ok(Status::Error) => &mut summary.error,
        Ok(Status::NotApplicable) => &mut summary.not_applicable,
        Ok(Status::Waived) => &mut summary.waived,
        _ => return,
    };
    *slot = slot.saturating_add(n);
}

fn u32_of(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The longest announcement payload: PostgreSQL refuses 8,000 bytes or more.
const ANNOUNCEMENT_MAX: usize = 7_900;

/// The payloads announcing drift events `(host, seq)` stored by the
/// collector `origin`: each is `ORIGIN` followed by ` SEQ LEN HOST` per
/// event (LEN the host name's length in bytes, so that any name parses),
/// as many events as fit under [`ANNOUNCEMENT_MAX`]. An event whose entry
/// alone would not fit (a host name of thousands of bytes) is left out:
/// the other collectors' watchers miss it, its storing does not fail.
fn announcements(origin: &str, events: &[(&str, i64)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut payload = String::new();
    for (host, seq) in events {
        let entry = format!(" {seq} {} {host}", host.len());
        if origin.len() + entry.len() > ANNOUNCEMENT_MAX {
            tracing::warn!(
                host = *host,
                seq = *seq,
                "a drift event is not announced to other collectors: its host name is too long"
            );
            continue;
        }
        if !payload.is_empty() && payload.len() + entry.len() > ANNOUNCEMENT_MAX {
            out.push(std::mem::take(&mut payload));
        }
        if payload.is_empty() {
            payload.push_str(origin);
        }
        payload.push_str(&entry);
    }
    if !payload.is_empty() {
        out.push(payload);
    }
    out
}

/// The origin and the announced (host, seq) of a payload of
/// [`announcements`], or `None` when it is not one. The one-event `SEQ:HOST`
/// payload of earlier collectors is read too, with an empty origin (no
/// collector's own), so that while collectors sharing a database are
/// upgraded one by one the upgraded ones still stream the others' drift.
fn parse_announcement(payload: &str) -> Option<(&str, Vec<(String, i64)>)> {
    if let Some((seq, host)) = payload.split_once(':')
        && !seq.is_empty()
        && seq.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(("", vec![(host.to_string(), seq.parse().ok()?)]));
    }
    let (origin, mut rest) = payload.split_once(' ')?;
    let mut events = Vec::new();
    while !rest.is_empty() {
        let (seq, after) = rest.split_once(' ')?;
        let (len, after) = after.split_once(' ')?;
        let len: usize = len.parse().ok()?;
        let host = after.get(..len)?;
        rest = after.get(len..)?;
        rest = rest.strip_prefix(' ').unwrap_or(rest);
        events.push((host.to_string(), seq.parse().ok()?));
    }
    Some((origin, events))
}

/// A filter on `column` by parameter `$n` that matches everything when the
/// parameter is its type's empty value: `empty` is that value's literal and
/// `set` whether the request sets the filter. Either way the parameter is
/// used, so its type and position do not change; but only a set filter is
/// written as the equality an index can serve (`$n = '' OR column = $n`
/// would make both databases scan the table).
fn filter(set: bool, column: &str, n: u8, empty: &str) -> String {
    if set {
        format!("{column} = ${n}")
    } else {
        format!("${n} = {empty}")
    }
}

/// A new snapshot of one host in a round of snapshots, with the digests
/// stored for its host when both sides have them.
struct NewSnapshot<'a> {
    host: &'a str,
    seq: i64,
    at_ms: i64,
    policies: &'a str,
    rows: &'a [ResultRow],
    digests: Option<&'a Digests>,
    stored: Option<Digests>,
}

/// The result and finding writes of a run of drift events or a round of
/// snapshots.
#[derive(Default)]
struct ResultWrites<'a> {
    results: ResultRows<'a>,
    open: FindingRows<'a>,
    resolve: Keys<'a>,
    removed: Keys<'a>,
}

impl<'a> ResultWrites<'a> {
    /// `row` of `host` differs from what is stored: it is written, and its
    /// finding opened when it fails, resolved when it passes (or no longer
    /// applies, or is waived).
    fn changed(&mut self, host: &'a str, at_ms: i64, row: &'a ResultRow) {
        self.results.push(host, row, at_ms);
        if row.status == FAIL {
            self.open
                .push(host, row, row.first_failed_ms.unwrap_or(at_ms));
        } else if resolves(row.status) {
            self.resolve.push(host, &row.policy, &row.rule, at_ms);
        }
    }

    /// The stored result of `host`'s `policy`/`rule` is not in the host's
    /// snapshot: it is deleted and its finding resolved.
    fn gone(&mut self, host: &'a str, policy: &'a str, rule: &'a str, at_ms: i64) {
        self.removed.push(host, policy, rule, at_ms);
        self.resolve.push(host, policy, rule, at_ms);
    }
}

macro_rules! backend {
    ($module:ident, $db:ty, $pool:ty, $conn:ty, $bulk:ident, $postgres:expr) => {
        pub(super) mod $module {
            use super::*;
            use super::super::bulk::{self as cols, $bulk as bulk};
            use sqlx::{Connection, Row};

            type Pool = $pool;
            type Conn = $conn;

            /// Applies every write in one transaction; when that fails, each
            /// write is retried in its own so one bad message cannot sink
            /// the others. Returns one outcome per write, in order.
            /// `origin` names this collector in drift announcements.
            pub(crate) async fn apply_batch(
                pool: &Pool,
                ops: &[&Op],
                origin: &str,
            ) -> Vec<Result<Outcome, StoreError>> {
                match apply_all(pool, ops, origin).await {
                    Ok(outcomes) => outcomes,
                    Err(err) if ops.len() == 1 => vec![Err(err)],
                    Err(_) => {
                        let mut out = Vec::with_capacity(ops.len());
                        for op in ops {
                            out.push(match apply_all(pool, std::slice::from_ref(op), origin).await {
                                Ok(mut v) => v.pop().unwrap_or(Err(StoreError::WriterGone)),
                                Err(err) => Err(err),
                            });
                        }
                        out
                    }
                }
            }

            /// One transaction for all `ops`. The outer error aborts it; an
            /// inner one (an unknown host) belongs to its write alone.
            async fn apply_all(
                pool: &Pool,
                ops: &[&Op],
                origin: &str,
            ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
                let mut conn = pool.acquire().await.map_err(q("get a connection"))?;
                let mut tx = conn.begin().await.map_err(q("begin a transaction"))?;
                let mut outcomes = Vec::with_capacity(ops.len());
                let mut i = 0;
                while i < ops.len() {
                    match ops[i] {
                        Op::Drift { .. } => {
                            // The longest run of drift events that touch
                            // distinct rules: their order does not matter to
                            // the latest results or the findings, so they go
                            // in bulk.
                            let mut keys: HashSet<(&str, &str, &str)> = HashSet::new();
                            let mut j = i;
                            while j < ops.len() {
                                let Op::Drift { host, row, .. } = ops[j] else {
                                    break;
                                };
                                if !keys.insert((host, &row.policy, &row.rule)) {
                                    break;
                                }
                                j += 1;
                            }
                            outcomes.extend(apply_drifts(&mut tx, &ops[i..j], origin).await?);
                            i = j;
                        }
                        Op::Snapshot { .. } => {
                            let mut j = i;
                            while j < ops.len() && matches!(ops[j], Op::Snapshot { .. }) {
                                j += 1;
                            }
                            outcomes.extend(apply_snapshot_run(&mut tx, &ops[i..j]).await?);
                            i = j;
                        }
                        op => {
                            match apply(&mut tx, op, origin).await {
                                Ok(outcome) => outcomes.push(Ok(outcome)),
                                Err(StoreError::UnknownHost(host)) => {
                                    outcomes.push(Err(StoreError::UnknownHost(host)))
                                }
                                Err(err) => return Err(err),
                            }
                            i += 1;
                        }
                    }
                }
                tx.commit().await.map_err(q("commit"))?;
                Ok(outcomes)
            }

            /// The hosts' stored (high-water mark, last seen, result
            /// digests when `digests`), by host.
            async fn marks(
                conn: &mut Conn,
                hosts: &[&str],
                digests: bool,
            ) -> Result<HashMap<String, (i64, i64, Option<Vec<u8>>)>, StoreError> {
                Ok(bulk::read_marks(conn, hosts, digests)
                    .await?
                    .into_iter()
                    .map(|(host, seq, seen, digests)| (host, (seq, seen, digests)))
                    .collect())
            }

            /// Drift events on distinct (host, policy, rule), in bulk: the
            /// hosts' high-water marks decide which are new; those are added
            /// to the history, become the latest results, and open or
            /// resolve their findings.
            async fn apply_drifts(
                conn: &mut Conn,
                ops: &[&Op],
                origin: &str,
            ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
                let mut hosts: Vec<&str> = Vec::new();
                {
                    let mut seen: HashSet<&str> = HashSet::new();
                    for op in ops {
                        if let Op::Drift { host, .. } = op
                            && seen.insert(host)
                        {
                            hosts.push(host);
                        }
                    }
                }
                // (mark, last seen, changed) per host.
                let mut marks: HashMap<String, (i64, i64, bool)> = marks(conn, &hosts, false)
                    .await?
                    .into_iter()
                    .map(|(host, (seq, seen, _))| (host, (seq, seen, false)))
                    .collect();
                let mut outcomes = Vec::with_capacity(ops.len());
                let mut events = cols::DriftRows::default();
                let mut writes = ResultWrites::default();
                let mut announced: Vec<(&str, i64)> = Vec::new();
                for op in ops {
                    let Op::Drift { host, seq, at_ms, kind, row, body, .. } = op else {
                        continue;
                    };
                    match marks.get_mut(host.as_str()) {
                        None => outcomes.push(Err(StoreError::UnknownHost(host.clone()))),
                        Some((mark, _, _)) if *seq <= *mark => {
                            outcomes.push(Ok(Outcome::Stored(Stored::Duplicate)))
                        }
                        Some((mark, seen, changed)) => {
                            *mark = *seq;
                            *seen = (*seen).max(*at_ms);
                            *changed = true;
                            outcomes.push(Ok(Outcome::Stored(Stored::New)));
                            events.push(host, *seq, *at_ms, *kind, row, body);
                            writes.changed(host, *at_ms, row);
                            if $postgres {
                                announced.push((host, *seq));
                            }
                        }
                    }
                }
                if events.host.is_empty() {
                    return Ok(outcomes);
                }
                // A drift event changes a result behind the host's digests:
                // they are cleared, and its next snapshot is compared row by
                // row.
                let mut advanced = cols::HostMarks::default();
                for (host, (seq, seen, changed)) in &marks {
                    if *changed {
                        advanced.push(host, *seq, *seen, None, None);
                    }
                }
                bulk::update_hosts(conn, &advanced).await?;
                bulk::insert_drift_events(conn, &events).await?;
                bulk::upsert_results(conn, &writes.results).await?;
                bulk::open_findings(conn, &writes.open).await?;
                bulk::resolve_findings(conn, &writes.resolve).await?;
                bulk::announce(conn, &announcements(origin, &announced)).await?;
                Ok(outcomes)
            }

            /// A run of snapshots, in rounds: the first snapshot of every
            /// host in the run, then the second, and so on, so that each
            /// round touches distinct hosts and every host's snapshots keep
            /// their order. Returns one outcome per snapshot, in order.
            async fn apply_snapshot_run(
                conn: &mut Conn,
                ops: &[&Op],
            ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
                let mut rounds: Vec<Vec<usize>> = Vec::new();
                {
                    let mut count: HashMap<&str, usize> = HashMap::new();
                    for (i, op) in ops.iter().enumerate() {
                        let Op::Snapshot { host, .. } = op else {
                            continue;
                        };
                        let n = count.entry(host.as_str()).or_insert(0);
                        if rounds.len() <= *n {
                            rounds.push(Vec::new());
                        }
                        rounds[*n].push(i);
                        *n += 1;
                    }
                }
                let mut outcomes: Vec<Option<Result<Outcome, StoreError>>> =
                    (0..ops.len()).map(|_| None).collect();
                for round in rounds {
                    let group: Vec<&Op> = round.iter().map(|&i| ops[i]).collect();
                    let done = apply_snapshots(conn, &group).await?;
                    for (i, outcome) in round.into_iter().zip(done) {
                        outcomes[i] = Some(outcome);
                    }
                }
                Ok(outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or(Err(StoreError::Incomplete("a snapshot was not applied"))))
                    .collect())
            }

            /// Snapshots of distinct hosts, in bulk. Each new one makes its
            /// host's latest results exactly the snapshot's: only the rows
            /// that differ from what is stored are written, the rules it no
            /// longer reports are deleted, findings of rules that now fail
            /// are opened and those of rules that no longer fail (or are
            /// gone) resolved. Rows that did not change need no finding
            /// work: an unchanged failing row already has its open finding
            /// (it was opened when the row was written), an unchanged other
            /// row has none.
            ///
            /// What differs is found from the digests stored with the host
            /// (see `digest.rs`) when it has them, and otherwise by reading
            /// its stored rows back and comparing them one by one.
            async fn apply_snapshots(
                conn: &mut Conn,
                ops: &[&Op],
            ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
                let hosts: Vec<&str> = ops
                    .iter()
                    .filter_map(|op| match op {
                        Op::Snapshot { host, .. } => Some(host.as_str()),
                        _ => None,
                    })
                    .collect();
                let marks = marks(conn, &hosts, true).await?;
                let mut outcomes = Vec::with_capacity(ops.len());
                // The new snapshots, with the digests stored for their host.
                let mut new = Vec::with_capacity(ops.len());
                for op in ops {
                    let Op::Snapshot { host, seq, at_ms, policies, rows, digests } = op else {
                        continue;
                    };
                    match marks.get(host.as_str()) {
                        None => outcomes.push(Err(StoreError::UnknownHost(host.clone()))),
                        Some((mark, _, _)) if *seq <= *mark => {
                            outcomes.push(Ok(Outcome::Stored(Stored::Duplicate)))
                        }
                        Some((_, _, stored)) => {
                            outcomes.push(Ok(Outcome::Stored(Stored::New)));
                            let digests = digests.as_ref();
                            let stored = digests.and(stored.as_deref()).and_then(Digests::decode);
                            new.push(NewSnapshot {
                                host,
                                seq: *seq,
                                at_ms: *at_ms,
                                policies,
                                rows,
                                digests,
                                stored,
                            });
                        }
                    }
                }
                if new.is_empty() {
                    return Ok(outcomes);
                }

                // Hosts without usable digests: their stored rows, by key.
                let exact: Vec<&str> =
                    new.iter().filter(|n| n.stored.is_none()).map(|n| n.host).collect();
                let stored = bulk::read_results(conn, &exact).await?;
                let mut before: HashMap<(&str, &str, &str), &cols::StoredResult> = stored
                    .iter()
                    .map(|s| ((s.host.as_str(), s.policy.as_str(), s.rule.as_str()), s))
                    .collect();

                let mut writes = ResultWrites::default();
                let mut at_of: HashMap<&str, i64> = HashMap::with_capacity(new.len());
                // Hosts compared by digest that lost rules, and the digests
                // of the rules they lost.
                let mut lost: HashMap<&str, HashSet<u64>> = HashMap::new();
                for n in &new {
                    at_of.insert(n.host, n.at_ms);
                    match (&n.stored, n.digests) {
                        (Some(stored), Some(digests)) => stored.diff(
                            digests,
                            |j| writes.changed(n.host, n.at_ms, &n.rows[j]),
                            |rule| {
                                lost.entry(n.host).or_default().insert(rule);
                            },
                        ),
                        _ => {
                            for row in n.rows {
                                let old = before.remove(&(n.host, row.policy.as_str(), row.rule.as_str()));
                                if !old.is_some_and(|old| old.same_as(row)) {
                                    writes.changed(n.host, n.at_ms, row);
                                }
                            }
                        }
                    }
                }
                // What is left was stored but is not in the snapshot: the
                // rows compared one by one, and the lost rules, whose names
                // are read back.
                let lost_hosts: Vec<&str> = lost.keys().copied().collect();
                let rules = bulk::read_rules(conn, &lost_hosts).await?;
                let lost_rules = rules
                    .iter()
                    .map(|(h, p, r)| (h.as_str(), p.as_str(), r.as_str()))
                    .filter(|(h, p, r)| {
                        lost.get(h).is_some_and(|l| l.contains(&digest::rule_digest(p, r)))
                    });
                for (host, policy, rule) in before.into_keys().chain(lost_rules) {
                    writes.gone(host, policy, rule, at_of.get(host).copied().unwrap_or_default());
                }

                let blobs: Vec<Option<Vec<u8>>> =
                    new.iter().map(|n| n.digests.map(Digests::encode)).collect();
                let mut advanced = cols::HostMarks::default();
                for (n, blob) in new.iter().zip(&blobs) {
                    advanced.push(n.host, n.seq, n.at_ms, Some(n.policies), blob.as_deref());
                }
                bulk::update_hosts(conn, &advanced).await?;
                bulk::upsert_results(conn, &writes.results).await?;
                bulk::delete_results(conn, &writes.removed).await?;
                bulk::open_findings(conn, &writes.open).await?;
                bulk::resolve_findings(conn, &writes.resolve).await?;
                Ok(outcomes)
            }

            async fn apply(conn: &mut Conn, op: &Op, origin: &str) -> Result<Outcome, StoreError> {
                match op {
                    Op::Hello {
                        host,
                        agent_version,
                        policies,
                        agent_last_seq,
                        at_ms,
                    } => {
                        sqlx::query(
                            "INSERT INTO hosts (host, agent_version, policies, first_seen_ms, last_seen_ms, connected, last_seq) \
                             VALUES ($1, $2, $3, $4, $4, 1, 0) \
                             ON CONFLICT (host) DO UPDATE SET agent_version = excluded.agent_version, \
                             policies = excluded.policies, last_seen_ms = excluded.last_seen_ms, connected = 1",
                        )
                        .bind(host)
                        .bind(agent_version)
                        .bind(policies)
                        .bind(*at_ms)
                        .execute(&mut *conn)
                        .await
                        .map_err(q("record a hello"))?;
                        let row = sqlx::query("SELECT last_seq FROM hosts WHERE host = $1")
                            .bind(host)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(q("read a host's sequence number"))?;
                        let mut stored: i64 = row.try_get(0).map_err(q("read a host's sequence number"))?;
                        if *agent_last_seq < stored {
                            tracing::warn!(
                                host = host.as_str(),
                                agent_last_seq = *agent_last_seq,
                                stored_last_seq = stored,
                                "the agent's sequence numbers went back (its state was lost); accepting its new messages"
                            );
                            sqlx::query("UPDATE hosts SET last_seq = $2 WHERE host = $1")
                                .bind(host)
                                .bind(*agent_last_seq)
                                .execute(&mut *conn)
                                .await
                                .map_err(q("reset a host's sequence number"))?;
                            stored = *agent_last_seq;
                        }
                        Ok(Outcome::Hello(u64::try_from(stored).unwrap_or(0)))
                    }
                    Op::Connected {
                        host,
                        connected,
                        at_ms,
                    } => {
                        sqlx::query(
                            "UPDATE hosts SET connected = $2, last_seen_ms = $3 WHERE host = $1",
                        )
                        .bind(host)
                        .bind(i64::from(*connected))
                        .bind(*at_ms)
                        .execute(&mut *conn)
                        .await
                        .map_err(q("mark a host connected"))?;
                        Ok(Outcome::Done)
                    }
                    Op::Drift { .. } => apply_drifts(conn, std::slice::from_ref(&op), origin)
                        .await?
                        .pop()
                        .unwrap_or(Err(StoreError::WriterGone)),
                    Op::Snapshot { .. } => apply_snapshots(conn, std::slice::from_ref(&op))
                        .await?
                        .pop()
                        .unwrap_or(Err(StoreError::WriterGone)),
                }
            }

            pub(crate) async fn fleet_summary(
                pool: &Pool,
                now: Timestamp,
                cut: &[i64; 5],
                deadlines: &Deadlines,
            ) -> Result<FleetSummaryResponse, StoreError> {
                let hour_ago = now.as_millisecond().saturating_sub(3_600_000);
                let row = sqlx::query(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN last_seen_ms >= $1 OR connected = 1 THEN 1 ELSE 0 END), 0) FROM hosts",
                )
                .bind(hour_ago)
                .fetch_one(pool)
                .await
                .map_err(q("count hosts"))?;
                let hosts: i64 = row.try_get(0).map_err(q("count hosts"))?;
                let seen: i64 = row.try_get(1).map_err(q("count hosts"))?;

                let sql = format!(
                    "SELECT f.severity, \
                     COALESCE(SUM(CASE WHEN f.resolved_ms IS NULL THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN {OVERDUE} THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN f.resolved_ms IS NOT NULL THEN 1 ELSE 0 END), 0), \
                     AVG(CASE WHEN f.resolved_ms IS NOT NULL THEN CAST(f.resolved_ms - f.first_failed_ms AS DOUBLE PRECISION) END) \
                     FROM findings f GROUP BY f.severity"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(cut[0])
                    .bind(cut[1])
                    .bind(cut[2])
                    .bind(cut[3])
                    .bind(cut[4])
                    .fetch_all(pool)
                    .await
                    .map_err(q("count findings"))?;
                let mut by_severity: HashMap<i64, (i64, i64, i64, Option<f64>)> = HashMap::new();
                for row in rows {
                    let severity: i64 = row.try_get(0).map_err(q("count findings"))?;
                    let open: i64 = row.try_get(1).map_err(q("count findings"))?;
                    let overdue: i64 = row.try_get(2).map_err(q("count findings"))?;
                    let resolved: i64 = row.try_get(3).map_err(q("count findings"))?;
                    let mean_ms: Option<f64> = row.try_get(4).map_err(q("count findings"))?;
                    by_severity.insert(severity, (open, overdue, resolved, mean_ms));
                }
                let mut response = FleetSummaryResponse {
                    hosts: u32_of(hosts),
                    hosts_seen_last_hour: u32_of(seen),
                    ..Default::default()
                };
                for severity in [
                    Severity::Critical,
                    Severity::High,
                    Severity::Medium,
                    Severity::Low,
                ] {
                    let number = severity as i64;
                    let (open, overdue, resolved, mean_ms) =
                        by_severity.get(&number).copied().unwrap_or((0, 0, 0, None));
                    response.open_findings = response.open_findings.saturating_add(u32_of(open));
                    response.overdue_findings =
                        response.overdue_findings.saturating_add(u32_of(overdue));
                    response.severities.push(SeverityCounts {
                        severity: severity as i32,
                        open: u32_of(open),
                        overdue: u32_of(overdue),
                        mean_time_to_fix_seconds: mean_ms.unwrap_or(0.0) / 1000.0,
                        resolved: u32_of(resolved),
                        deadline_seconds: deadline_of(deadlines, number)
                            .map(|d| d.as_secs())
                            .unwrap_or(0),
                    });
                }

                let rows = sqlx::query(
                    "SELECT policy, \
                     COALESCE(SUM(CASE WHEN status = $1 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN status = $2 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN status = $3 THEN 1 ELSE 0 END), 0) \
                     FROM results GROUP BY policy ORDER BY policy",
                )
                .bind(Status::Pass as i64)
                .bind(FAIL)
                .bind(ERROR)
                .fetch_all(pool)
                .await
                .map_err(q("count results per policy"))?;
                for row in rows {
                    let policy: String = row.try_get(0).map_err(q("count results per policy"))?;
                    let pass: i64 = row.try_get(1).map_err(q("count results per policy"))?;
                    let fail: i64 = row.try_get(2).map_err(q("count results per policy"))?;
                    let error: i64 = row.try_get(3).map_err(q("count results per policy"))?;
                    let judged = pass + fail;
                    response.policies.push(PolicyCompliance {
                        policy,
                        pass: u32_of(pass),
                        fail: u32_of(fail),
                        error: u32_of(error),
                        score: if judged > 0 {
                            100.0 * pass as f64 / judged as f64
                        } else {
                            100.0
                        },
                    });
                }
                Ok(response)
            }

            /// Hosts (all, or the one named `only`), sorted by name.
            pub(crate) async fn list_hosts(
                pool: &Pool,
                cut: &[i64; 5],
                only: &str,
            ) -> Result<Vec<HostSummary>, StoreError> {
                let only_host = filter(!only.is_empty(), "host", 1, "''");
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT host, agent_version, last_seen_ms, connected, last_seq FROM hosts \
                     WHERE {only_host} ORDER BY host",
                )))
                .bind(only)
                .fetch_all(pool)
                .await
                .map_err(q("list hosts"))?;
                let mut hosts = Vec::with_capacity(rows.len());
                let mut index: HashMap<String, usize> = HashMap::new();
                for row in rows {
                    let host: String = row.try_get(0).map_err(q("list hosts"))?;
                    let agent_version: String = row.try_get(1).map_err(q("list hosts"))?;
                    let last_seen_ms: i64 = row.try_get(2).map_err(q("list hosts"))?;
                    let connected: i64 = row.try_get(3).map_err(q("list hosts"))?;
                    let last_seq: i64 = row.try_get(4).map_err(q("list hosts"))?;
                    index.insert(host.clone(), hosts.len());
                    hosts.push(HostSummary {
                        host,
                        agent_version,
                        last_seen_at: format_ms(last_seen_ms),
                        connected: connected != 0,
                        summary: Some(Summary::default()),
                        overdue: 0,
                        last_seq: u64::try_from(last_seq).unwrap_or(0),
                    });
                }
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT host, status, COUNT(*) FROM results WHERE {only_host} GROUP BY host, status",
                )))
                .bind(only)
                .fetch_all(pool)
                .await
                .map_err(q("count hosts' results"))?;
                for row in rows {
                    let host: String = row.try_get(0).map_err(q("count hosts' results"))?;
                    let status: i64 = row.try_get(1).map_err(q("count hosts' results"))?;
                    let count: i64 = row.try_get(2).map_err(q("count hosts' results"))?;
                    if let Some(&i) = index.get(&host)
                        && let Some(summary) = hosts[i].summary.as_mut()
                    {
                        summary_add(summary, status, count);
                    }
                }
                let sql = format!(
                    "SELECT f.host, COUNT(*) FROM findings f WHERE {} AND {OVERDUE} GROUP BY f.host",
                    filter(!only.is_empty(), "f.host", 6, "''"),
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(cut[0])
                    .bind(cut[1])
                    .bind(cut[2])
                    .bind(cut[3])
                    .bind(cut[4])
                    .bind(only)
                    .fetch_all(pool)
                    .await
                    .map_err(q("count hosts' overdue findings"))?;
                for row in rows {
                    let host: String = row.try_get(0).map_err(q("count hosts' overdue findings"))?;
                    let count: i64 = row.try_get(1).map_err(q("count hosts' overdue findings"))?;
                    if let Some(&i) = index.get(&host) {
                        hosts[i].overdue = u32_of(count);
                    }
                }
                Ok(hosts)
            }

            pub(crate) async fn get_host(
                pool: &Pool,
                cut: &[i64; 5],
                host: &str,
            ) -> Result<Option<GetHostResponse>, StoreError> {
                let Some(summary) = list_hosts(pool, cut, host).await?.into_iter().next() else {
                    return Ok(None);
                };
                let row = sqlx::query("SELECT policies FROM hosts WHERE host = $1")
                    .bind(host)
                    .fetch_one(pool)
                    .await
                    .map_err(q("read a host"))?;
                let policies: String = row.try_get(0).map_err(q("read a host"))?;
                let rows = sqlx::query(
                    "SELECT r.policy, r.rule, r.title, r.severity, r.status, r.body, f.first_failed_ms \
                     FROM results r LEFT JOIN findings f ON f.host = r.host AND f.policy = r.policy \
                     AND f.rule = r.rule AND f.resolved_ms IS NULL \
                     WHERE r.host = $1 ORDER BY r.policy, r.rule",
                )
                .bind(host)
                .fetch_all(pool)
                .await
                .map_err(q("read a host's results"))?;
                let mut results = Vec::with_capacity(rows.len());
                for row in rows {
                    let policy: String = row.try_get(0).map_err(q("read a host's results"))?;
                    let rule: String = row.try_get(1).map_err(q("read a host's results"))?;
                    let title: String = row.try_get(2).map_err(q("read a host's results"))?;
                    let severity: i64 = row.try_get(3).map_err(q("read a host's results"))?;
                    let status: i64 = row.try_get(4).map_err(q("read a host's results"))?;
                    let body: Vec<u8> = row.try_get(5).map_err(q("read a host's results"))?;
                    let first_failed_ms: Option<i64> =
                        row.try_get(6).map_err(q("read a host's results"))?;
                    let detail = RuleResult::decode(body.as_slice()).unwrap_or_default();
                    results.push(Finding {
                        host: host.to_string(),
                        policy,
                        rule,
                        title,
                        severity: i32::try_from(severity).unwrap_or(0),
                        status: i32::try_from(status).unwrap_or(0),
                        first_failed_at: first_failed_ms.map(format_ms).unwrap_or_default(),
                        resolved_at: String::new(),
                        overdue: first_failed_ms
                            .is_some_and(|ms| is_overdue(cut, severity, ms, false)),
                        expected: detail.expected,
                        actual: detail.actual,
                        evidence: detail.evidence,
                    });
                }
                Ok(Some(GetHostResponse {
                    host: Some(summary),
                    policies: decode_policies(&policies),
                    results,
                }))
            }

            pub(crate) async fn list_findings(
                pool: &Pool,
                cut: &[i64; 5],
                request: &ListFindingsRequest,
            ) -> Result<Vec<Finding>, StoreError> {
                let sql = format!(
                    "SELECT f.host, f.policy, f.rule, f.title, f.severity, f.first_failed_ms, f.resolved_ms, r.status, r.body \
                     FROM findings f LEFT JOIN results r ON r.host = f.host AND r.policy = f.policy AND r.rule = f.rule \
                     WHERE {} AND {} AND {} AND {} \
                     AND ($10 = 1 OR f.resolved_ms IS NULL) AND ($11 = 0 OR {OVERDUE}) \
                     ORDER BY f.severity DESC, f.first_failed_ms, f.host, f.policy, f.rule, f.id",
                    filter(request.severity != 0, "f.severity", 6, "0"),
                    filter(!request.policy.is_empty(), "f.policy", 7, "''"),
                    filter(!request.rule.is_empty(), "f.rule", 8, "''"),
                    filter(!request.host.is_empty(), "f.host", 9, "''"),
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(cut[0])
                    .bind(cut[1])
                    .bind(cut[2])
                    .bind(cut[3])
                    .bind(cut[4])
                    .bind(i64::from(request.severity))
                    .bind(request.policy.as_str())
                    .bind(request.rule.as_str())
                    .bind(request.host.as_str())
                    .bind(i64::from(request.include_resolved))
                    .bind(i64::from(request.overdue_only))
                    .fetch_all(pool)
                    .await
                    .map_err(q("list findings"))?;
                let mut findings = Vec::with_capacity(rows.len());
                for row in rows {
                    let e = q("list findings");
                    let host: String = row.try_get(0).map_err(e)?;
                    let policy: String = row.try_get(1).map_err(q("list findings"))?;
                    let rule: String = row.try_get(2).map_err(q("list findings"))?;
                    let title: String = row.try_get(3).map_err(q("list findings"))?;
                    let severity: i64 = row.try_get(4).map_err(q("list findings"))?;
                    let first_failed_ms: i64 = row.try_get(5).map_err(q("list findings"))?;
                    let resolved_ms: Option<i64> = row.try_get(6).map_err(q("list findings"))?;
                    let status: Option<i64> = row.try_get(7).map_err(q("list findings"))?;
                    let body: Option<Vec<u8>> = row.try_get(8).map_err(q("list findings"))?;
                    let detail = body
                        .and_then(|b| RuleResult::decode(b.as_slice()).ok())
                        .unwrap_or_default();
                    let status = match (resolved_ms, status) {
                        (None, Some(s)) if s == FAIL || s == ERROR => s,
                        (None, _) => FAIL,
                        (Some(_), Some(s)) if resolves(s) => s,
                        (Some(_), _) => Status::Pass as i64,
                    };
                    findings.push(Finding {
                        host,
                        policy,
                        rule,
                        title,
                        severity: i32::try_from(severity).unwrap_or(0),
                        status: i32::try_from(status).unwrap_or(0),
                        first_failed_at: format_ms(first_failed_ms),
                        resolved_at: resolved_ms.map(format_ms).unwrap_or_default(),
                        overdue: is_overdue(cut, severity, first_failed_ms, resolved_ms.is_some()),
                        expected: detail.expected,
                        actual: detail.actual,
                        evidence: detail.evidence,
                    });
                }
                Ok(findings)
            }

            pub(crate) async fn drift_history(
                pool: &Pool,
                host: &str,
                after: i64,
                limit: i64,
            ) -> Result<Vec<DriftEvent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT body FROM drift_events WHERE host = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(host)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(q("read the drift history"))?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let body: Vec<u8> = row.try_get(0).map_err(q("read the drift history"))?;
                    if let Ok(event) = DriftEvent::decode(body.as_slice()) {
                        out.push(event);
                    }
                }
                Ok(out)
            }

            #[allow(dead_code)]
            type Database = $db;
        }
    };
}

backend!(
    sqlite,
    sqlx::Sqlite,
    sqlx::SqlitePool,
    sqlx::SqliteConnection,
    sqlite,
    false
);
backend!(
    postgres_sql,
    sqlx::Postgres,
    sqlx::PgPool,
    sqlx::PgConnection,
    postgres,
    true
);

pub(super) mod postgres {
    //! PostgreSQL's SQL plus the LISTEN/NOTIFY relay of drift events.

    use super::super::Inner;
    pub(crate) use super::postgres_sql::*;
    use super::{DRIFT_CHANNEL, DriftEvent, StoreError, parse_announcement, q};
    use prost::Message;
    use sqlx::postgres::PgListener;
    use sqlx::{PgPool, Row};
    use std::future::Future;
    use std::sync::Weak;
    use std::time::Duration;

    /// How many announcements the relay reads back with one query at most.
    const RELAY_BATCH: usize = 1024;

    /// The announced drift events that are stored, in the order announced,
    /// with `hostname` set.
    async fn announced_events(
        pool: &PgPool,
        announced: &[(String, i64)],
    ) -> Result<Vec<DriftEvent>, StoreError> {
        let e = "read announced drift events";
        let hosts: Vec<&str> = announced.iter().map(|(h, _)| h.as_str()).collect();
        let seqs: Vec<i64> = announced.iter().map(|(_, s)| *s).collect();
        let rows = sqlx::query(
            "SELECT d.body, v.host FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS v(host, seq, n) \
             JOIN drift_events d ON d.host = v.host AND d.seq = v.seq ORDER BY v.n",
        )
        .bind(&hosts)
        .bind(&seqs)
        .fetch_all(pool)
        .await
        .map_err(q(e))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let body: Vec<u8> = row.try_get(0).map_err(q(e))?;
            let host: String = row.try_get(1).map_err(q(e))?;
            if let Ok(mut event) = DriftEvent::decode(body.as_slice()) {
                event.hostname = host;
                events.push(event);
            }
        }
        Ok(events)
    }

    /// Starts listening on the drift channel and returns the relay task:
    /// every announced (host, seq) is read back and sent to `drift`, so all
    /// collectors sharing the database stream every agent's drift.
    pub(crate) async fn listen(
        pool: &PgPool,
        store: Weak<Inner>,
        origin: String,
    ) -> Result<impl Future<Output = ()> + Send + 'static, StoreError> {
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(q("listen for drift"))?;
        listener
            .listen(DRIFT_CHANNEL)
            .await
            .map_err(q("listen for drift"))?;
        let pool = pool.clone();
        Ok(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let received = tokio::select! {
                    received = listener.recv() => received,
                    _ = tick.tick() => {
                        // The store is gone: stop relaying.
                        if store.strong_count() == 0 {
                            return;
                        }
                        continue;
                    }
                };
                let notification = match received {
                    Ok(n) => n,
                    Err(err) => {
                        if store.strong_count() == 0 {
                            return;
                        }
                        tracing::warn!(error = %err, "the drift listener lost its connection; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // Whatever else has arrived is read back with it, in one
                // query; this collector's own events were published when
                // they were stored.
                let mut announced = Vec::with_capacity(64);
                let take = |announced: &mut Vec<_>, payload: &str| match parse_announcement(payload)
                {
                    Some((from, events)) if from != origin => announced.extend(events),
                    Some(_) => {}
                    None => {
                        tracing::warn!(payload, "ignored a drift announcement that does not parse")
                    }
                };
                take(&mut announced, notification.payload());
                while announced.len() < RELAY_BATCH {
                    let Some(more) = listener.next_buffered() else {
                        break;
                    };
                    take(&mut announced, more.payload());
                }
                if announced.is_empty() {
                    continue;
                }
                match announced_events(&pool, &announced).await {
                    Ok(events) => {
                        let Some(inner) = store.upgrade() else {
                            return;
                        };
                        for event in events {
                            let _ = inner.drift.send(event);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read announced drift events")
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_any_host_name() {
        let events = [
            ("web-1", 1),
            ("a host with spaces", 22),
            ("7 3 x", 333),
            ("", 4),
            ("ünïcode", i64::MAX),
        ];
        let payloads = announcements("0123456789abcdef", &events);
        assert_eq!(payloads.len(), 1);
        let (origin, parsed) = parse_announcement(&payloads[0]).expect("parses");
        assert_eq!(origin, "0123456789abcdef");
        let want: Vec<(String, i64)> = events.iter().map(|(h, s)| (h.to_string(), *s)).collect();
        assert_eq!(parsed, want);
    }

    #[test]
    fn announcements_are_cut_under_the_limit_and_keep_their_order() {
        let hosts: Vec<String> = (0..2_000).map(|i| format!("host-{i:05}")).collect();
        let events: Vec<(&str, i64)> = hosts.iter().map(|h| (h.as_str(), 7)).collect();
        let payloads = announcements("origin", &events);
        assert!(payloads.len() > 1, "{} payloads", payloads.len());
        let mut all = Vec::new();
        for p in &payloads {
            assert!(p.len() <= ANNOUNCEMENT_MAX, "{} bytes", p.len());
            let (origin, parsed) = parse_announcement(p).expect("parses");
            assert_eq!(origin, "origin");
            all.extend(parsed);
        }
        let want: Vec<(String, i64)> = hosts.iter().map(|h| (h.clone(), 7)).collect();
        assert_eq!(all, want);
        assert!(announcements("origin", &[]).is_empty());
    }

    #[test]
    fn a_host_name_too_long_to_announce_is_left_out() {
        let long = "x".repeat(ANNOUNCEMENT_MAX);
        let payloads = announcements("o", &[("a", 1), (long.as_str(), 2), ("b", 3)]);
        let parsed: Vec<(String, i64)> = payloads
            .iter()
            .flat_map(|p| parse_announcement(p).expect("parses").1)
            .collect();
        assert_eq!(parsed, [("a".to_string(), 1), ("b".to_string(), 3)]);
    }

    #[test]
    fn malformed_announcements_do_not_parse() {
        for payload in [
            "",
            "origin",
            "origin 1",
            "origin 1 5 abc",
            "origin x 3 abc",
            "origin 1 -1 abc",
            "origin 1 3 abcd",
        ] {
            assert_eq!(parse_announcement(payload), None, "{payload:?}");
        }
        assert_eq!(parse_announcement("origin "), Some(("origin", vec![])));
    }

    #[test]
    fn earlier_collectors_announcements_are_read_with_no_origin() {
        assert_eq!(
            parse_announcement("42:web-1"),
            Some(("", vec![("web-1".to_string(), 42)]))
        );
        assert_eq!(
            parse_announcement("7:host:with:colons"),
            Some(("", vec![("host:with:colons".to_string(), 7)]))
        );
        // An origin is hexadecimal and followed by a space, so a new
        // payload whose host has a colon is not taken for an old one.
        assert_eq!(
            parse_announcement("00ff 3 5 a:b:c"),
            Some(("00ff", vec![("a:b:c".to_string(), 3)]))
        );
        assert_eq!(parse_announcement("99999999999999999999:h"), None);
    }
}
