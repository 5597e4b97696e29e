-- The collector's store (PostgreSQL). Times are Unix milliseconds (UTC);
-- severities and statuses are the proto enums' numbers; booleans are 0/1.

CREATE TABLE hosts (
    host          TEXT PRIMARY KEY NOT NULL,
    agent_version TEXT NOT NULL DEFAULT '',
    -- One "id<TAB>version" line per policy.
    policies      TEXT NOT NULL DEFAULT '',
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    connected     BIGINT NOT NULL DEFAULT 0,
    -- The highest sequence number stored for this host.
    last_seq      BIGINT NOT NULL DEFAULT 0
);

-- The latest result of every (host, policy, rule).
CREATE TABLE results (
    host            TEXT NOT NULL,
    policy          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    title           TEXT NOT NULL,
    severity        BIGINT NOT NULL,
    status          BIGINT NOT NULL,
    first_failed_ms BIGINT,
    updated_ms      BIGINT NOT NULL,
    -- The whole RuleResult, protobuf-encoded.
    body            BYTEA NOT NULL,
    PRIMARY KEY (host, policy, rule)
);

-- Every drift event, once per (host, seq).
CREATE TABLE drift_events (
    host     TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    at_ms    BIGINT NOT NULL,
    kind     BIGINT NOT NULL,
    policy   TEXT NOT NULL,
    rule     TEXT NOT NULL,
    severity BIGINT NOT NULL,
    status   BIGINT NOT NULL,
    -- The whole DriftEvent, protobuf-encoded.
    body     BYTEA NOT NULL,
    PRIMARY KEY (host, seq)
);

-- The life of every finding: opened when a rule first fails, resolved when
-- it passes again.
CREATE TABLE findings (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host            TEXT NOT NULL,
    policy          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    title           TEXT NOT NULL,
    severity        BIGINT NOT NULL,
    first_failed_ms BIGINT NOT NULL,
    resolved_ms     BIGINT
);
CREATE UNIQUE INDEX findings_open ON findings (host, policy, rule) WHERE resolved_ms IS NULL;
CREATE INDEX findings_severity ON findings (severity, resolved_ms);
CREATE INDEX findings_host ON findings (host, policy, rule);
