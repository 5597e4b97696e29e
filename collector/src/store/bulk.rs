//! The store's set-based writes and the reads they need, one implementation
//! per backend behind the same signatures: many rows per statement, and
//! statements whose text does not depend on the row count, so that they are
//! prepared once per connection. SQLite takes multi-row `VALUES` in a few
//! fixed sizes (bound parameters, well under its variable limit); PostgreSQL
//! takes one statement over `UNNEST` of array parameters, whatever the
//! number of rows.

use std::ops::Range;

use super::ResultRow;
use super::StoreError;
use super::backend::q;

/// One row of `results` as stored, read back to compare with a snapshot:
/// its key, and what decides whether a new row differs (the title,
/// severity and status are in the body too).
#[derive(Debug)]
pub(super) struct StoredResult {
    pub host: String,
    pub policy: String,
    pub rule: String,
    pub first_failed_ms: Option<i64>,
    pub body: Vec<u8>,
}

impl StoredResult {
    /// Whether writing `row` would store exactly what is there already
    /// (the time of the write aside). A row's title, severity and status
    /// are its body's (`result_row` derives all from one `RuleResult`), so
    /// comparing the body compares them.
    pub fn same_as(&self, row: &ResultRow) -> bool {
        self.first_failed_ms == row.first_failed_ms && self.body == row.body
    }
}

/// Hosts' new high-water marks (and, for a snapshot, their policies), and
/// the digests of their results.
#[derive(Debug, Default)]
pub(super) struct HostMarks<'a> {
    pub host: Vec<&'a str>,
    pub seq: Vec<i64>,
    pub seen_ms: Vec<i64>,
    /// `None` keeps the stored policies.
    pub policies: Vec<Option<&'a str>>,
    /// The encoded digests of the host's results as they now are; `None`
    /// clears them (the next snapshot is compared row by row).
    pub digests: Vec<Option<&'a [u8]>>,
}

impl<'a> HostMarks<'a> {
    pub fn push(
        &mut self,
        host: &'a str,
        seq: i64,
        seen_ms: i64,
        policies: Option<&'a str>,
        digests: Option<&'a [u8]>,
    ) {
        self.host.push(host);
        self.seq.push(seq);
        self.seen_ms.push(seen_ms);
        self.policies.push(policies);
        self.digests.push(digests);
    }
}

/// A known host's high-water mark, last-seen time and (when asked for)
/// the encoded digests of its results.
pub(super) type Mark = (String, i64, i64, Option<Vec<u8>>);

/// A `hosts` row selected as `host, last_seq, last_seen_ms, result_digests`.
fn mark<'r, R>(row: &'r R) -> Result<Mark, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    ))
}

/// Rows of `drift_events`.
#[derive(Debug, Default)]
pub(super) struct DriftRows<'a> {
    pub host: Vec<&'a str>,
    pub seq: Vec<i64>,
    pub at_ms: Vec<i64>,
    pub kind: Vec<i64>,
    pub policy: Vec<&'a str>,
    pub rule: Vec<&'a str>,
    pub severity: Vec<i64>,
    pub status: Vec<i64>,
    pub body: Vec<&'a [u8]>,
}

impl<'a> DriftRows<'a> {
    pub fn push(
        &mut self,
        host: &'a str,
        seq: i64,
        at_ms: i64,
        kind: i64,
        row: &'a ResultRow,
        body: &'a [u8],
    ) {
        self.host.push(host);
        self.seq.push(seq);
        self.at_ms.push(at_ms);
        self.kind.push(kind);
        self.policy.push(&row.policy);
        self.rule.push(&row.rule);
        self.severity.push(row.severity);
        self.status.push(row.status);
        self.body.push(body);
    }
}

/// Rows of `results`.
#[derive(Debug, Default)]
pub(super) struct ResultRows<'a> {
    pub host: Vec<&'a str>,
    pub policy: Vec<&'a str>,
    pub rule: Vec<&'a str>,
    pub title: Vec<&'a str>,
    pub severity: Vec<i64>,
    pub status: Vec<i64>,
    pub first_failed_ms: Vec<Option<i64>>,
    pub updated_ms: Vec<i64>,
    pub body: Vec<&'a [u8]>,
}

impl<'a> ResultRows<'a> {
    pub fn push(&mut self, host: &'a str, row: &'a ResultRow, updated_ms: i64) {
        self.host.push(host);
        self.policy.push(&row.policy);
        self.rule.push(&row.rule);
        self.title.push(&row.title);
        self.severity.push(row.severity);
        self.status.push(row.status);
        self.first_failed_ms.push(row.first_failed_ms);
        self.updated_ms.push(updated_ms);
        self.body.push(&row.body);
    }
}

/// Findings to open (or, when one is open already, to retitle).
#[derive(Debug, Default)]
pub(super) struct FindingRows<'a> {
    pub host: Vec<&'a str>,
    pub policy: Vec<&'a str>,
    pub rule: Vec<&'a str>,
    pub title: Vec<&'a str>,
    pub severity: Vec<i64>,
    pub first_failed_ms: Vec<i64>,
}

impl<'a> FindingRows<'a> {
    pub fn push(&mut self, host: &'a str, row: &'a ResultRow, first_failed_ms: i64) {
        self.host.push(host);
        self.policy.push(&row.policy);
        self.rule.push(&row.rule);
        self.title.push(&row.title);
        self.severity.push(row.severity);
        self.first_failed_ms.push(first_failed_ms);
    }
}

/// (host, policy, rule) keys with a time: findings to resolve at that time,
/// or results to delete (the time unused).
#[derive(Debug, Default)]
pub(super) struct Keys<'a> {
    pub host: Vec<&'a str>,
    pub policy: Vec<&'a str>,
    pub rule: Vec<&'a str>,
    pub at_ms: Vec<i64>,
}

impl<'a> Keys<'a> {
    pub fn push(&mut self, host: &'a str, policy: &'a str, rule: &'a str, at_ms: i64) {
        self.host.push(host);
        self.policy.push(policy);
        self.rule.push(rule);
        self.at_ms.push(at_ms);
    }
}

/// A `results` row selected as `host, policy, rule, first_failed_ms, body`.
fn stored_result<'r, R>(row: &'r R) -> Result<StoredResult, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredResult {
        host: row.try_get(0)?,
        policy: row.try_get(1)?,
        rule: row.try_get(2)?,
        first_failed_ms: row.try_get(3)?,
        body: row.try_get(4)?,
    })
}

/// A stored (host, policy, rule).
pub(super) type StoredRule = (String, String, String);

/// A `results` row selected as `host, policy, rule`.
fn stored_rule<'r, R>(row: &'r R) -> Result<StoredRule, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// The statement sizes (rows) SQLite's multi-row writes are cut into: few
/// enough distinct texts to stay prepared, large enough to amortise a
/// statement; at 9 parameters a row the largest binds 4,608 parameters,
/// far below SQLite's limit of 32,766.
const SQLITE_SIZES: [usize; 5] = [512, 128, 32, 8, 1];

/// Cuts `0..n` into ranges of the sizes above, largest first.
fn sqlite_chunks(n: usize) -> impl Iterator<Item = Range<usize>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let left = n - start;
        let size = SQLITE_SIZES.iter().copied().find(|s| *s <= left)?;
        let range = start..start + size;
        start += size;
        Some(range)
    })
}

pub(super) mod sqlite {
    use super::*;
    use sqlx::query_builder::Separated;
    use sqlx::sqlite::SqliteRow;
    use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

    /// Writes rows `0..n` as `head VALUES (..), (..) tail` statements, in
    /// the chunk sizes of [`sqlite_chunks`]; `bind` pushes row `i`'s values.
    async fn write_rows(
        conn: &mut SqliteConnection,
        n: usize,
        head: &str,
        tail: &str,
        what: &'static str,
        mut bind: impl FnMut(&mut Separated<'_, Sqlite, &'static str>, usize),
    ) -> Result<(), StoreError> {
        for r in sqlite_chunks(n) {
            let mut b = QueryBuilder::<Sqlite>::new(head);
            b.push_values(r, |mut t, i| bind(&mut t, i));
            b.push(tail);
            b.build().execute(&mut *conn).await.map_err(q(what))?;
        }
        Ok(())
    }

    /// Runs `SELECT columns FROM table WHERE host IN (hosts)` in the chunk
    /// sizes of [`sqlite_chunks`] and converts each row with `convert`.
    async fn select_by_host<T>(
        conn: &mut SqliteConnection,
        columns: &str,
        table: &str,
        hosts: &[&str],
        what: &'static str,
        convert: impl Fn(&SqliteRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for r in sqlite_chunks(hosts.len()) {
            let mut b = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {columns} FROM {table} WHERE host IN ("
            ));
            let mut list = b.separated(", ");
            for host in &hosts[r] {
                list.push_bind(*host);
            }
            b.push(")");
            for row in b.build().fetch_all(&mut *conn).await.map_err(q(what))? {
                out.push(convert(&row).map_err(q(what))?);
            }
        }
        Ok(out)
    }

    /// The high-water mark, last-seen time and, when `digests`, the result
    /// digests of each known host.
    pub(crate) async fn read_marks(
        conn: &mut SqliteConnection,
        hosts: &[&str],
        digests: bool,
    ) -> Result<Vec<Mark>, StoreError> {
        // The digests are read only when needed.
        let columns = if digests {
            "host, last_seq, last_seen_ms, result_digests"
        } else {
            "host, last_seq, last_seen_ms, NULL"
        };
        select_by_host(
            conn,
            columns,
            "hosts",
            hosts,
            "read hosts' sequence numbers",
            |r| mark(r),
        )
        .await
    }

    pub(crate) async fn update_hosts(
        conn: &mut SqliteConnection,
        m: &HostMarks<'_>,
    ) -> Result<(), StoreError> {
        write_rows(
            conn,
            m.host.len(),
            "UPDATE hosts SET last_seq = v.column2, last_seen_ms = v.column3, \
                 policies = COALESCE(v.column4, hosts.policies), result_digests = v.column5 FROM (",
            ") AS v WHERE hosts.host = v.column1",
            "advance hosts' sequence numbers",
            |t, i| {
                t.push_bind(m.host[i])
                    .push_bind(m.seq[i])
                    .push_bind(m.seen_ms[i])
                    .push_bind(m.policies[i])
                    .push_bind(m.digests[i]);
            },
        )
        .await
    }

    pub(crate) async fn insert_drift_events(
        conn: &mut SqliteConnection,
        d: &DriftRows<'_>,
    ) -> Result<(), StoreError> {
        write_rows(
            conn,
            d.host.len(),
            "INSERT INTO drift_events (host, seq, at_ms, kind, policy, rule, severity, status, body) ",
            " ON CONFLICT (host, seq) DO UPDATE SET at_ms = excluded.at_ms, kind = excluded.kind, \
                 policy = excluded.policy, rule = excluded.rule, severity = excluded.severity, \
                 status = excluded.status, body = excluded.body",
            "store drift events",
            |t, i| {
                t.push_bind(d.host[i])
                    .push_bind(d.seq[i])
                    .push_bind(d.at_ms[i])
                    .push_bind(d.kind[i])
                    .push_bind(d.policy[i])
                    .push_bind(d.rule[i])
                    .push_bind(d.severity[i])
                    .push_bind(d.status[i])
                    .push_bind(d.body[i]);
            },
        )
        .await
    }

    pub(crate) async fn upsert_results(
        conn: &mut SqliteConnection,
        rows: &ResultRows<'_>,
    ) -> Result<(), StoreError> {
        write_rows(
            conn,
            rows.host.len(),
            "INSERT INTO results (host, policy, rule, title, severity, status, first_failed_ms, updated_ms, body) ",
            " ON CONFLICT (host, policy, rule) DO UPDATE SET title = excluded.title, \
                 severity = excluded.severity, status = excluded.status, \
                 first_failed_ms = excluded.first_failed_ms, updated_ms = excluded.updated_ms, \
                 body = excluded.body",
            "store results",
            |t, i| {
                t.push_bind(rows.host[i])
                    .push_bind(rows.policy[i])
                    .push_bind(rows.rule[i])
                    .push_bind(rows.title[i])
                    .push_bind(rows.severity[i])
                    .push_bind(rows.status[i])
                    .push_bind(rows.first_failed_ms[i])
                    .push_bind(rows.updated_ms[i])
                    .push_bind(rows.body[i]);
            },
        )
        .await
    }

    pub(crate) async fn delete_results(
        conn: &mut SqliteConnection,
        keys: &Keys<'_>,
    ) -> Result<(), StoreError> {
        write_rows(
            conn,
            keys.host.len(),
            "DELETE FROM results WHERE (host, policy, rule) IN (",
            ")",
            "delete removed results",
            |t, i| {
                t.push_bind(keys.host[i])
                    .push_bind(keys.policy[i])
                    .push_bind(keys.rule[i]);
            },
        )
        .await
    }

    pub(crate) async fn open_findings(
        conn: &mut SqliteConnection,
        f: &FindingRows<'_>,
    ) -> Result<(), StoreError> {
        write_rows(
            conn,
            f.host.len(),
            "INSERT INTO findings (host, policy, rule, title, severity, first_failed_ms) ",
            " ON CONFLICT (host, policy, rule) WHERE resolved_ms IS NULL \
                 DO UPDATE SET title = excluded.title, severity = excluded.severity",
            "open findings",
            |t, i| {
                t.push_bind(f.host[i])
                    .push_bind(f.policy[i])
                    .push_bind(f.rule[i])
                    .push_bind(f.title[i])
                    .push_bind(f.severity[i])
                    .push_bind(f.first_failed_ms[i]);
            },
        )
        .await
    }

    pub(crate) async fn resolve_findings(
        conn: &mut SqliteConnection,
        keys: &Keys<'_>,
    ) -> Result<(), StoreError> {
        write_rows(
            conn,
            keys.host.len(),
            "UPDATE findings SET resolved_ms = v.column4 FROM (",
            ") AS v WHERE findings.host = v.column1 AND findings.policy = v.column2 \
                 AND findings.rule = v.column3 AND findings.resolved_ms IS NULL",
            "resolve findings",
            |t, i| {
                t.push_bind(keys.host[i])
                    .push_bind(keys.policy[i])
                    .push_bind(keys.rule[i])
                    .push_bind(keys.at_ms[i]);
            },
        )
        .await
    }

    /// Every stored result of `hosts`.
    pub(crate) async fn read_results(
        conn: &mut SqliteConnection,
        hosts: &[&str],
    ) -> Result<Vec<StoredResult>, StoreError> {
        let columns = "host, policy, rule, first_failed_ms, body";
        select_by_host(
            conn,
            columns,
            "results",
            hosts,
            "read hosts' results",
            |r| stored_result(r),
        )
        .await
    }

    /// The (host, policy, rule) of every stored result of `hosts`.
    pub(crate) async fn read_rules(
        conn: &mut SqliteConnection,
        hosts: &[&str],
    ) -> Result<Vec<StoredRule>, StoreError> {
        let columns = "host, policy, rule";
        select_by_host(conn, columns, "results", hosts, "read hosts' rules", |r| {
            stored_rule(r)
        })
        .await
    }

    /// SQLite has one collector: the writer publishes stored drift events
    /// in process, so there is nothing to announce.
    pub(crate) async fn announce(
        _conn: &mut SqliteConnection,
        _payloads: &[String],
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

pub(super) mod postgres {
    use super::*;
    use sqlx::PgConnection;

    /// The host, high-water mark and last-seen time of each known host,
    /// locked (in name order, so that collectors sharing the database do not
    /// deadlock) until the transaction ends.
    pub(crate) async fn read_marks(
        conn: &mut PgConnection,
        hosts: &[&str],
        digests: bool,
    ) -> Result<Vec<Mark>, StoreError> {
        let e = "read hosts' sequence numbers";
        let sql = if digests {
            "SELECT host, last_seq, last_seen_ms, result_digests FROM hosts \
             WHERE host = ANY($1) ORDER BY host FOR UPDATE"
        } else {
            "SELECT host, last_seq, last_seen_ms, NULL::bytea FROM hosts \
             WHERE host = ANY($1) ORDER BY host FOR UPDATE"
        };
        let rows = sqlx::query(sql)
            .bind(hosts)
            .fetch_all(&mut *conn)
            .await
            .map_err(q(e))?;
        rows.iter().map(|row| mark(row).map_err(q(e))).collect()
    }

    pub(crate) async fn update_hosts(
        conn: &mut PgConnection,
        m: &HostMarks<'_>,
    ) -> Result<(), StoreError> {
        if m.host.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE hosts SET last_seq = v.seq, last_seen_ms = v.seen, \
             policies = COALESCE(v.policies, hosts.policies), result_digests = v.digests \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[]) \
             AS v(host, seq, seen, policies, digests) \
             WHERE hosts.host = v.host",
        )
        .bind(&m.host)
        .bind(&m.seq)
        .bind(&m.seen_ms)
        .bind(&m.policies)
        .bind(&m.digests)
        .execute(&mut *conn)
        .await
        .map_err(q("advance hosts' sequence numbers"))?;
        Ok(())
    }

    pub(crate) async fn insert_drift_events(
        conn: &mut PgConnection,
        d: &DriftRows<'_>,
    ) -> Result<(), StoreError> {
        if d.host.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO drift_events (host, seq, at_ms, kind, policy, rule, severity, status, body) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], \
             $6::text[], $7::bigint[], $8::bigint[], $9::bytea[]) \
             ON CONFLICT (host, seq) DO UPDATE SET at_ms = excluded.at_ms, kind = excluded.kind, \
             policy = excluded.policy, rule = excluded.rule, severity = excluded.severity, \
             status = excluded.status, body = excluded.body",
        )
        .bind(&d.host)
        .bind(&d.seq)
        .bind(&d.at_ms)
        .bind(&d.kind)
        .bind(&d.policy)
        .bind(&d.rule)
        .bind(&d.severity)
        .bind(&d.status)
        .bind(&d.body)
        .execute(&mut *conn)
        .await
        .map_err(q("store drift events"))?;
        Ok(())
    }

    pub(crate) async fn upsert_results(
        conn: &mut PgConnection,
        rows: &ResultRows<'_>,
    ) -> Result<(), StoreError> {
        if rows.host.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO results (host, policy, rule, title, severity, status, first_failed_ms, updated_ms, body) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
             $6::bigint[], $7::bigint[], $8::bigint[], $9::bytea[]) \
             ON CONFLICT (host, policy, rule) DO UPDATE SET title = excluded.title, \
             severity = excluded.severity, status = excluded.status, \
             first_failed_ms = excluded.first_failed_ms, updated_ms = excluded.updated_ms, \
             body = excluded.body",
        )
        .bind(&rows.host)
        .bind(&rows.policy)
        .bind(&rows.rule)
        .bind(&rows.title)
        .bind(&rows.severity)
        .bind(&rows.status)
        .bind(&rows.first_failed_ms)
        .bind(&rows.updated_ms)
        .bind(&rows.body)
        .execute(&mut *conn)
        .await
        .map_err(q("store results"))?;
        Ok(())
    }

    pub(crate) async fn delete_results(
        conn: &mut PgConnection,
        keys: &Keys<'_>,
    ) -> Result<(), StoreError> {
        if keys.host.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "DELETE FROM results r USING UNNEST($1::text[], $2::text[], $3::text[]) AS v(host, policy, rule) \
             WHERE r.host = v.host AND r.policy = v.policy AND r.rule = v.rule",
        )
        .bind(&keys.host)
        .bind(&keys.policy)
        .bind(&keys.rule)
        .execute(&mut *conn)
        .await
        .map_err(q("delete removed results"))?;
        Ok(())
    }

    pub(crate) async fn open_findings(
        conn: &mut PgConnection,
        f: &FindingRows<'_>,
    ) -> Result<(), StoreError> {
        if f.host.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO findings (host, policy, rule, title, severity, first_failed_ms) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) \
             ON CONFLICT (host, policy, rule) WHERE resolved_ms IS NULL \
             DO UPDATE SET title = excluded.title, severity = excluded.severity",
        )
        .bind(&f.host)
        .bind(&f.policy)
        .bind(&f.rule)
        .bind(&f.title)
        .bind(&f.severity)
        .bind(&f.first_failed_ms)
        .execute(&mut *conn)
        .await
        .map_err(q("open findings"))?;
        Ok(())
    }

    pub(crate) async fn resolve_findings(
        conn: &mut PgConnection,
        keys: &Keys<'_>,
    ) -> Result<(), StoreError> {
        if keys.host.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE findings SET resolved_ms = v.at \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS v(host, policy, rule, at) \
             WHERE findings.host = v.host AND findings.policy = v.policy AND findings.rule = v.rule \
             AND findings.resolved_ms IS NULL",
        )
        .bind(&keys.host)
        .bind(&keys.policy)
        .bind(&keys.rule)
        .bind(&keys.at_ms)
        .execute(&mut *conn)
        .await
        .map_err(q("resolve findings"))?;
        Ok(())
    }

    /// Every stored result of `hosts`.
    pub(crate) async fn read_results(
        conn: &mut PgConnection,
        hosts: &[&str],
    ) -> Result<Vec<StoredResult>, StoreError> {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        let e = "read hosts' results";
        let rows = sqlx::query(
            "SELECT host, policy, rule, first_failed_ms, body \
             FROM results WHERE host = ANY($1)",
        )
        .bind(hosts)
        .fetch_all(&mut *conn)
        .await
        .map_err(q(e))?;
        rows.iter()
            .map(|row| stored_result(row).map_err(q(e)))
            .collect()
    }

    /// The (host, policy, rule) of every stored result of `hosts`.
    pub(crate) async fn read_rules(
        conn: &mut PgConnection,
        hosts: &[&str],
    ) -> Result<Vec<StoredRule>, StoreError> {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        let e = "read hosts' rules";
        let rows = sqlx::query("SELECT host, policy, rule FROM results WHERE host = ANY($1)")
            .bind(hosts)
            .fetch_all(&mut *conn)
            .await
            .map_err(q(e))?;
        rows.iter()
            .map(|row| stored_rule(row).map_err(q(e)))
            .collect()
    }

    /// Announces the payloads of `backend::announcements` on the drift
    /// channel; PostgreSQL delivers them when the transaction commits.
    pub(crate) async fn announce(
        conn: &mut PgConnection,
        payloads: &[String],
    ) -> Result<(), StoreError> {
        if payloads.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
            .bind(super::super::DRIFT_CHANNEL)
            .bind(payloads)
            .execute(&mut *conn)
            .await
            .map_err(q("announce drift events"))?;
        Ok(())
    }
}
