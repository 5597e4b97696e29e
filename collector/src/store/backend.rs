//! The SQL of the store, written once and compiled for each backend
//! (SQLite and PostgreSQL accept the same statements here: `$N` parameters,
//! `ON CONFLICT` upserts, partial unique indexes), plus PostgreSQL's
//! LISTEN/NOTIFY drift listener.

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
use std::collections::HashMap;

/// Rows per multi-row INSERT (9 parameters each, well under both backends'
/// parameter limits).
const ROWS_PER_INSERT: usize = 1000;

const FAIL: i64 = Status::Fail as i64;
const ERROR: i64 = Status::Error as i64;

/// A finding is overdue when open and first failed before its severity's
/// cut-off, which are parameters $1..$5 (indexed by severity number).
const OVERDUE: &str = "(f.resolved_ms IS NULL AND f.first_failed_ms < (CASE f.severity WHEN 4 THEN $5 WHEN 3 THEN $4 WHEN 2 THEN $3 WHEN 1 THEN $2 ELSE $1 END))";

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
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

macro_rules! backend {
    ($module:ident, $db:ty, $pool:ty, $conn:ty, $postgres:expr) => {
        pub(super) mod $module {
            use super::*;
            use sqlx::{Connection, Row};

            type Pool = $pool;
            type Conn = $conn;

            /// Applies every write in one transaction; when that fails, each
            /// write is retried in its own so one bad message cannot sink
            /// the others. Returns one outcome per write, in order.
            pub(crate) async fn apply_batch(
                pool: &Pool,
                ops: &[&Op],
            ) -> Vec<Result<Outcome, StoreError>> {
                match apply_all(pool, ops).await {
                    Ok(outcomes) => outcomes,
                    Err(err) if ops.len() == 1 => vec![Err(err)],
                    Err(_) => {
                        let mut out = Vec::with_capacity(ops.len());
                        for op in ops {
                            out.push(match apply_all(pool, std::slice::from_ref(op)).await {
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
            ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
                let mut conn = pool.acquire().await.map_err(q("get a connection"))?;
                let mut tx = conn.begin().await.map_err(q("begin a transaction"))?;
                let mut outcomes = Vec::with_capacity(ops.len());
                let mut i = 0;
                while i < ops.len() {
                    if matches!(ops[i], Op::Drift { .. }) {
                        // The longest run of drift events that touch distinct
                        // rules: their order does not matter to the latest
                        // results or the findings, so they go in bulk.
                        let mut keys: std::collections::HashSet<(&str, &str, &str)> =
                            std::collections::HashSet::new();
                        let mut j = i;
                        while j < ops.len() && j - i < ROWS_PER_INSERT {
                            let Op::Drift { host, row, .. } = ops[j] else {
                                break;
                            };
                            if !keys.insert((host.as_str(), row.policy.as_str(), row.rule.as_str())) {
                                break;
                            }
                            j += 1;
                        }
                        outcomes.extend(apply_drifts(&mut tx, &ops[i..j]).await?);
                        i = j;
                    } else {
                        match apply(&mut tx, ops[i]).await {
                            Ok(outcome) => outcomes.push(Ok(outcome)),
                            Err(StoreError::UnknownHost(host)) => {
                                outcomes.push(Err(StoreError::UnknownHost(host)))
                            }
                            Err(err) => return Err(err),
                        }
                        i += 1;
                    }
                }
                tx.commit().await.map_err(q("commit"))?;
                Ok(outcomes)
            }

            /// Drift events on distinct (host, policy, rule), in bulk: the
            /// hosts' high-water marks decide which are new; those are added
            /// to the history, become the latest results, and open or
            /// resolve their findings.
            async fn apply_drifts(
                conn: &mut Conn,
                ops: &[&Op],
            ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
                let mut marks: HashMap<&str, (i64, i64, bool)> = HashMap::new();
                {
                    let mut hosts: Vec<&str> = Vec::new();
                    for op in ops {
                        if let Op::Drift { host, .. } = op
                            && !hosts.contains(&host.as_str())
                        {
                            hosts.push(host.as_str());
                        }
                    }
                    let mut b = sqlx::QueryBuilder::<$db>::new(
                        "SELECT host, last_seq, last_seen_ms FROM hosts WHERE host IN (",
                    );
                    let mut list = b.separated(", ");
                    for host in &hosts {
                        list.push_bind(*host);
                    }
                    b.push(")");
                    if $postgres {
                        b.push(" FOR UPDATE");
                    }
                    let rows = b
                        .build()
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(q("read hosts' sequence numbers"))?;
                    for row in rows {
                        let host: String = row.try_get(0).map_err(q("read hosts' sequence numbers"))?;
                        let seq: i64 = row.try_get(1).map_err(q("read hosts' sequence numbers"))?;
                        let seen: i64 = row.try_get(2).map_err(q("read hosts' sequence numbers"))?;
                        if let Some(name) = hosts.iter().find(|h| **h == host) {
                            marks.insert(*name, (seq, seen, false));
                        }
                    }
                }
                let mut outcomes = Vec::with_capacity(ops.len());
                let mut new: Vec<&Op> = Vec::with_capacity(ops.len());
                for op in ops {
                    let Op::Drift { host, seq, at_ms, .. } = op else {
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
                            new.push(op);
                            outcomes.push(Ok(Outcome::Stored(Stored::New)));
                        }
                    }
                }
                if new.is_empty() {
                    return Ok(outcomes);
                }

                let changed: Vec<(&str, i64, i64)> = marks
                    .iter()
                    .filter(|(_, (_, _, changed))| *changed)
                    .map(|(host, (seq, seen, _))| (*host, *seq, *seen))
                    .collect();
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE hosts SET last_seq = v.column2, last_seen_ms = v.column3 FROM (",
                );
                b.push_values(&changed, |mut t, (host, seq, seen)| {
                    t.push_bind(*host).push_bind(*seq).push_bind(*seen);
                });
                b.push(") AS v WHERE hosts.host = v.column1");
                b.build()
                    .execute(&mut *conn)
                    .await
                    .map_err(q("advance hosts' sequence numbers"))?;

                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO drift_events (host, seq, at_ms, kind, policy, rule, severity, status, body) ",
                );
                b.push_values(&new, |mut t, op| {
                    if let Op::Drift { host, seq, at_ms, kind, row, body, .. } = op {
                        t.push_bind(host.as_str())
                            .push_bind(*seq)
                            .push_bind(*at_ms)
                            .push_bind(*kind)
                            .push_bind(row.policy.as_str())
                            .push_bind(row.rule.as_str())
                            .push_bind(row.severity)
                            .push_bind(row.status)
                            .push_bind(body.as_slice());
                    }
                });
                b.push(
                    " ON CONFLICT (host, seq) DO UPDATE SET at_ms = excluded.at_ms, kind = excluded.kind, \
                     policy = excluded.policy, rule = excluded.rule, severity = excluded.severity, \
                     status = excluded.status, body = excluded.body",
                );
                b.build()
                    .execute(&mut *conn)
                    .await
                    .map_err(q("store drift events"))?;

                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO results (host, policy, rule, title, severity, status, first_failed_ms, updated_ms, body) ",
                );
                b.push_values(&new, |mut t, op| {
                    if let Op::Drift { host, at_ms, row, .. } = op {
                        t.push_bind(host.as_str())
                            .push_bind(row.policy.as_str())
                            .push_bind(row.rule.as_str())
                            .push_bind(row.title.as_str())
                            .push_bind(row.severity)
                            .push_bind(row.status)
                            .push_bind(row.first_failed_ms)
                            .push_bind(*at_ms)
                            .push_bind(row.body.as_slice());
                    }
                });
                b.push(
                    " ON CONFLICT (host, policy, rule) DO UPDATE SET title = excluded.title, \
                     severity = excluded.severity, status = excluded.status, \
                     first_failed_ms = excluded.first_failed_ms, updated_ms = excluded.updated_ms, body = excluded.body",
                );
                b.build()
                    .execute(&mut *conn)
                    .await
                    .map_err(q("store drift results"))?;

                let failing: Vec<&&Op> = new
                    .iter()
                    .filter(|op| matches!(op, Op::Drift { row, .. } if row.status == FAIL))
                    .collect();
                if !failing.is_empty() {
                    let mut b = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO findings (host, policy, rule, title, severity, first_failed_ms) ",
                    );
                    b.push_values(&failing, |mut t, op| {
                        if let Op::Drift { host, at_ms, row, .. } = op {
                            t.push_bind(host.as_str())
                                .push_bind(row.policy.as_str())
                                .push_bind(row.rule.as_str())
                                .push_bind(row.title.as_str())
                                .push_bind(row.severity)
                                .push_bind(row.first_failed_ms.unwrap_or(*at_ms));
                        }
                    });
                    b.push(
                        " ON CONFLICT (host, policy, rule) WHERE resolved_ms IS NULL \
                         DO UPDATE SET title = excluded.title, severity = excluded.severity",
                    );
                    b.build()
                        .execute(&mut *conn)
                        .await
                        .map_err(q("open findings"))?;
                }
                let passing: Vec<&&Op> = new
                    .iter()
                    .filter(|op| matches!(op, Op::Drift { row, .. } if resolves(row.status)))
                    .collect();
                if !passing.is_empty() {
                    let mut b = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE findings SET resolved_ms = v.column4 FROM (",
                    );
                    b.push_values(&passing, |mut t, op| {
                        if let Op::Drift { host, at_ms, row, .. } = op {
                            t.push_bind(host.as_str())
                                .push_bind(row.policy.as_str())
                                .push_bind(row.rule.as_str())
                                .push_bind(*at_ms);
                        }
                    });
                    b.push(
                        ") AS v WHERE findings.host = v.column1 AND findings.policy = v.column2 \
                         AND findings.rule = v.column3 AND findings.resolved_ms IS NULL",
                    );
                    b.build()
                        .execute(&mut *conn)
                        .await
                        .map_err(q("resolve findings"))?;
                }
                if $postgres {
                    let mut b = sqlx::QueryBuilder::<$db>::new("SELECT pg_notify(");
                    b.push_bind(DRIFT_CHANNEL);
                    b.push(", v.column1) FROM (");
                    b.push_values(&new, |mut t, op| {
                        if let Op::Drift { host, seq, .. } = op {
                            t.push_bind(format!("{seq}:{host}"));
                        }
                    });
                    b.push(") AS v");
                    b.build()
                        .execute(&mut *conn)
                        .await
                        .map_err(q("announce drift events"))?;
                }
                Ok(outcomes)
            }

            /// Whether the host has said Hello.
            async fn known(conn: &mut Conn, host: &str) -> Result<bool, StoreError> {
                let row = sqlx::query("SELECT host FROM hosts WHERE host = $1")
                    .bind(host)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(q("look up a host"))?;
                Ok(row.is_some())
            }

            async fn apply(conn: &mut Conn, op: &Op) -> Result<Outcome, StoreError> {
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
                    Op::Drift { .. } => apply_drifts(conn, std::slice::from_ref(&op))
                        .await?
                        .pop()
                        .unwrap_or(Err(StoreError::WriterGone)),
                    Op::Snapshot {
                        host,
                        seq,
                        at_ms,
                        policies,
                        rows,
                    } => {
                        let done = sqlx::query(
                            "UPDATE hosts SET last_seq = $2, last_seen_ms = $3, policies = $4 \
                             WHERE host = $1 AND last_seq < $2",
                        )
                        .bind(host)
                        .bind(*seq)
                        .bind(*at_ms)
                        .bind(policies)
                        .execute(&mut *conn)
                        .await
                        .map_err(q("advance the sequence number"))?;
                        if done.rows_affected() == 0 {
                            return match known(conn, host).await? {
                                true => Ok(Outcome::Stored(Stored::Duplicate)),
                                false => Err(StoreError::UnknownHost(host.clone())),
                            };
                        }
                        sqlx::query("DELETE FROM results WHERE host = $1")
                            .bind(host)
                            .execute(&mut *conn)
                            .await
                            .map_err(q("replace a host's results"))?;
                        for chunk in rows.chunks(ROWS_PER_INSERT) {
                            let mut b = sqlx::QueryBuilder::<$db>::new(
                                "INSERT INTO results (host, policy, rule, title, severity, status, first_failed_ms, updated_ms, body) ",
                            );
                            b.push_values(chunk, |mut t, row| {
                                t.push_bind(host.as_str())
                                    .push_bind(row.policy.as_str())
                                    .push_bind(row.rule.as_str())
                                    .push_bind(row.title.as_str())
                                    .push_bind(row.severity)
                                    .push_bind(row.status)
                                    .push_bind(row.first_failed_ms)
                                    .push_bind(*at_ms)
                                    .push_bind(row.body.as_slice());
                            });
                            b.build()
                                .execute(&mut *conn)
                                .await
                                .map_err(q("store a snapshot's results"))?;
                        }
                        let failing: Vec<&ResultRow> =
                            rows.iter().filter(|r| r.status == FAIL).collect();
                        for chunk in failing.chunks(ROWS_PER_INSERT) {
                            let mut b = sqlx::QueryBuilder::<$db>::new(
                                "INSERT INTO findings (host, policy, rule, title, severity, first_failed_ms) ",
                            );
                            b.push_values(chunk, |mut t, row| {
                                t.push_bind(host.as_str())
                                    .push_bind(row.policy.as_str())
                                    .push_bind(row.rule.as_str())
                                    .push_bind(row.title.as_str())
                                    .push_bind(row.severity)
                                    .push_bind(row.first_failed_ms.unwrap_or(*at_ms));
                            });
                            b.push(
                                " ON CONFLICT (host, policy, rule) WHERE resolved_ms IS NULL \
                                 DO UPDATE SET title = excluded.title, severity = excluded.severity",
                            );
                            b.build()
                                .execute(&mut *conn)
                                .await
                                .map_err(q("open a snapshot's findings"))?;
                        }
                        sqlx::query(
                            "UPDATE findings SET resolved_ms = $2 WHERE host = $1 AND resolved_ms IS NULL \
                             AND NOT EXISTS (SELECT 1 FROM results r WHERE r.host = findings.host \
                             AND r.policy = findings.policy AND r.rule = findings.rule AND r.status IN ($3, $4))",
                        )
                        .bind(host)
                        .bind(*at_ms)
                        .bind(FAIL)
                        .bind(ERROR)
                        .execute(&mut *conn)
                        .await
                        .map_err(q("resolve a snapshot's findings"))?;
                        Ok(Outcome::Stored(Stored::New))
                    }
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
                let rows = sqlx::query(
                    "SELECT host, agent_version, last_seen_ms, connected, last_seq FROM hosts \
                     WHERE ($1 = '' OR host = $1) ORDER BY host",
                )
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
                let rows = sqlx::query(
                    "SELECT host, status, COUNT(*) FROM results WHERE ($1 = '' OR host = $1) GROUP BY host, status",
                )
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
                    "SELECT f.host, COUNT(*) FROM findings f WHERE ($6 = '' OR f.host = $6) AND {OVERDUE} GROUP BY f.host"
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
                     WHERE ($6 = 0 OR f.severity = $6) AND ($7 = '' OR f.policy = $7) AND ($8 = '' OR f.rule = $8) \
                     AND ($9 = '' OR f.host = $9) AND ($10 = 1 OR f.resolved_ms IS NULL) AND ($11 = 0 OR {OVERDUE}) \
                     ORDER BY f.severity DESC, f.first_failed_ms, f.host, f.policy, f.rule, f.id"
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

            /// One stored drift event, for the LISTEN/NOTIFY relay.
            #[allow(dead_code)]
            pub(crate) async fn drift_event(
                pool: &Pool,
                host: &str,
                seq: i64,
            ) -> Result<Option<DriftEvent>, StoreError> {
                let row = sqlx::query("SELECT body FROM drift_events WHERE host = $1 AND seq = $2")
                    .bind(host)
                    .bind(seq)
                    .fetch_optional(pool)
                    .await
                    .map_err(q("read a drift event"))?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let body: Vec<u8> = row.try_get(0).map_err(q("read a drift event"))?;
                Ok(DriftEvent::decode(body.as_slice()).ok())
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
    false
);
backend!(
    postgres_sql,
    sqlx::Postgres,
    sqlx::PgPool,
    sqlx::PgConnection,
    true
);

pub(super) mod postgres {
    //! PostgreSQL's SQL plus the LISTEN/NOTIFY relay of drift events.

    use super::super::Inner;
    pub(crate) use super::postgres_sql::*;
    use super::{DRIFT_CHANNEL, StoreError, q};
    use sqlx::PgPool;
    use sqlx::postgres::PgListener;
    use std::future::Future;
    use std::sync::Weak;
    use std::time::Duration;

    /// Starts listening on the drift channel and returns the relay task:
    /// every announced (host, seq) is read back and sent to `drift`, so all
    /// collectors sharing the database stream every agent's drift.
    pub(crate) async fn listen(
        pool: &PgPool,
        store: Weak<Inner>,
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
                let Some((seq, host)) = notification.payload().split_once(':') else {
                    continue;
                };
                let Ok(seq) = seq.parse::<i64>() else {
                    continue;
                };
                match drift_event(&pool, host, seq).await {
                    Ok(Some(mut event)) => {
                        event.hostname = host.to_string();
                        let Some(inner) = store.upgrade() else {
                            return;
                        };
                        let _ = inner.drift.send(event);
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read an announced drift event")
                    }
                }
            }
        })
    }
}
