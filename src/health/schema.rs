//! The history's schema: one migration per version, applied in order at
//! the node's start (each in its own transaction). A new column or table
//! is a migration appended here; old files are migrated, never rewritten.

/// The schema this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One migration per version: the statements taking the schema from
/// version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE nodes(id INTEGER PRIMARY KEY, peer_id TEXT NOT NULL UNIQUE, first_seen_s INTEGER NOT NULL);
CREATE TABLE reasons(id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE probes(
    node INTEGER NOT NULL,
    at_s INTEGER NOT NULL,
    verdict INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    rtt_us INTEGER,
    probe_us INTEGER,
    PRIMARY KEY(node, at_s)
) WITHOUT ROWID;
CREATE TABLE changes(node INTEGER NOT NULL, at_s INTEGER NOT NULL, old INTEGER, new INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE INDEX changes_at ON changes(at_s);
CREATE VIEW probe_log AS
    SELECT n.peer_id, datetime(p.at_s, 'unixepoch') AS at,
        CASE p.verdict WHEN 0 THEN 'online' WHEN 1 THEN 'joining' WHEN 2 THEN 'degraded'
            WHEN 3 THEN 'stale' WHEN 4 THEN 'offline' ELSE 'unreachable' END AS verdict,
        r.text AS reason, p.rtt_us / 1000.0 AS rtt_ms, p.probe_us / 1000.0 AS probe_ms
    FROM probes p JOIN nodes n ON n.id = p.node LEFT JOIN reasons r ON r.id = p.reason;
"#,
    // 2: each probe's DAG heads against ours; our own reachability per round.
    r#"
ALTER TABLE probes ADD COLUMN dag INTEGER;
ALTER TABLE probes ADD COLUMN dag_heads INTEGER;
CREATE TABLE reachability(at_s INTEGER PRIMARY KEY, state INTEGER NOT NULL, reason TEXT NOT NULL, observed TEXT NOT NULL);
DROP VIEW probe_log;
CREATE VIEW probe_log AS
    SELECT n.peer_id, datetime(p.at_s, 'unixepoch') AS at,
        CASE p.verdict WHEN 0 THEN 'online' WHEN 1 THEN 'joining' WHEN 2 THEN 'degraded'
            WHEN 3 THEN 'stale' WHEN 4 THEN 'offline' ELSE 'unreachable' END AS verdict,
        r.text AS reason, p.rtt_us / 1000.0 AS rtt_ms, p.probe_us / 1000.0 AS probe_ms,
        CASE p.dag WHEN 0 THEN 'in step' WHEN 1 THEN 'behind ' || p.dag_heads
            WHEN 2 THEN 'ahead ' || p.dag_heads END AS dag
    FROM probes p JOIN nodes n ON n.id = p.node LEFT JOIN reasons r ON r.id = p.reason;
CREATE VIEW reachability_log AS
    SELECT datetime(at_s, 'unixepoch') AS at,
        CASE state WHEN 1 THEN 'reachable' WHEN 2 THEN 'unreachable' ELSE 'unknown' END AS state,
        reason, observed
    FROM reachability;
"#,
];
