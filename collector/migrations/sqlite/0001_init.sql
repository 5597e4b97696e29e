-- The collector's store (SQLite). Times are Unix milliseconds (UTC);
-- severities and statuses are the proto enums' numbers; booleans are 0/1.

CREATE TABLE hosts (
    host          TEXT PRIMARY KEY NOT NULL,
    agent_version TEXT NOT NULL DEFAULT '',
    -- One "id<TAB>version" line per policy.
    policies      TEXT NOT NULL DEFAULT '',
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    connected     INTEGER NOT NULL DEFAULT 0,
    -- The highest sequence number stored for this host.
    last_seq      INTEGER NOT NULL DEFAULT 0
);

-- The latest result of every (host, policy, rule).
CREATE TABLE results (
    host            TEXT NOT NULL,
    policy          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    title           TEXT NOT NULL,
    severity        INTEGER NOT NULL,
    status          INTEGER NOT NULL,
    first_failed_ms INTEGER,
    updated_ms      INTEGER NOT NULL,
    -- The whole RuleResult, protobuf-encoded.
    body            BLOB NOT NULL,
    PRIMARY KEY (host, policy, rule)
);

-- Every drift event, once per (host, seq).
CREATE TABLE drift_events (
    host     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    at_ms    INTEGER NOT NULL,
    kind     INTEGER NOT NULL,
    policy   TEXT NOT NULL,
    rule     TEXT NOT NULL,
    severity INTEGER NOT NULL,
    status   INTEGER NOT NULL,
    -- The whole DriftEvent, protobuf-encoded.
    body     BLOB NOT NULL,
    PRIMARY KEY (host, seq)
);

-- The life of every finding: opened when a rule first fails, resolved when
-- it passes again.
CREATE TABLE findings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    host            TEXT NOT NULL,
    policy          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    title           TEXT NOT NULL,
    severity        INTEGER NOT NULL,
    first_failed_ms INTEGER NOT NULL,
    resolved_ms     INTEGER
);
CREATE UNIQUE INDEX findings_open ON findings (host, policy, rule) WHERE resolved_ms IS NULL;
CREATE INDEX findings_severity ON findings (severity, resolved_ms);
CREATE INDEX findings_host ON findings (host, policy, rule);
