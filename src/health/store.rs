//! The health history: every probe's result in an SQLite file in the
//! node's data directory (mode 0600), kept for a retention period, with a
//! schema version and migrations. Compact by design (a node id and a reason
//! id per row, seconds and microseconds as integers, one B-tree keyed by
//! node and time): 100 nodes probed each minute for a week are about a
//! million rows. A file that is not ours, is damaged, or was written by a
//! newer peerapi stops the start and is left exactly as it was.
//!
//! For the `sqlite3` shell, the view `probe_log` reads as text:
//! `SELECT * FROM probe_log WHERE peer_id LIKE '%abc' ORDER BY at DESC LIMIT 20;`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::dag::DagSync;
use super::schema::MIGRATIONS;
pub use super::schema::SCHEMA_VERSION;
pub use super::store_file::OpenError;
use super::store_file::{check_header, create_private_dir, create_private_file, sql_error};
use super::Verdict;

/// "peer" in ASCII: marks the file as a peerapi health history.
const APPLICATION_ID: i64 = 0x7065_6572;

/// One probe's result, as stored.
#[derive(Clone, Debug)]
pub struct ProbeRecord {
    pub peer: String,
    pub at: SystemTime,
    pub verdict: Verdict,
    pub reason: String,
    pub rtt: Option<Duration>,
    pub probe_time: Option<Duration>,
    /// Its DAG heads against ours, when it was asked.
    pub dag: Option<DagSync>,
}

/// A node's verdict changed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub peer: String,
    pub at_s: i64,
    pub old: Option<Verdict>,
    pub new: Verdict,
    pub reason: String,
}

/// The history file, open for writing (the node) or reading (the CLI).
pub struct History {
    conn: Connection,
    path: PathBuf,
    /// Node ids and the last verdict of each, so a probe costs one insert.
    nodes: HashMap<String, (i64, Option<Verdict>)>,
    reasons: HashMap<String, i64>,
}

pub(super) fn secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn micros(d: Option<Duration>) -> Option<i64> {
    d.map(|d| d.as_micros().min(i64::MAX as u128) as i64)
}

fn verdict_of(level: i64) -> Verdict {
    Verdict::ALL
        .get(level as usize)
        .copied()
        .unwrap_or(Verdict::Unreachable)
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "History({})", self.path.display())
    }
}

impl History {
    /// Opens (or creates, 0600) the history at `path` for node `owner`.
    pub fn open(path: &Path, owner: &str) -> Result<History, OpenError> {
        let io = |e: std::io::Error| OpenError::Io {
            path: path.to_path_buf(),
            error: e.to_string(),
        };
        let existed = std::fs::metadata(path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        if existed {
            check_header(path)?;
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir).map_err(io)?;
            }
            create_private_file(path).map_err(io)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, e))?;
        let mut history = Self::checked(conn, path)?;
        // Only once the file is known to be ours. WAL: `subnet health`
        // reads while the node writes, and a round's commit costs no fsync
        // of its own (NORMAL is safe with WAL).
        history
            .conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| history.conn.pragma_update(None, "synchronous", "NORMAL"))
            // The WAL is cut back to 1 MiB after each checkpoint (else it
            // keeps its largest size, about 4 MiB).
            .and_then(|_| {
                history
                    .conn
                    .pragma_update(None, "journal_size_limit", 1 << 20)
            })
            .map_err(|e| sql_error(path, e))?;
        history.migrate()?;
        history.claim(owner)?;
        history.load()?;
        Ok(history)
    }

    /// Opens an existing history to read it (`subnet health`, the console).
    pub fn open_read(path: &Path) -> Result<History, OpenError> {
        if !path.exists() {
            return Err(OpenError::Io {
                path: path.to_path_buf(),
                error: "no health history here: start the node with --health (or give --db)".into(),
            });
        }
        check_header(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, e))?;
        let mut history = Self::checked(conn, path)?;
        let version = history.user_version()?;
        if version != SCHEMA_VERSION {
            return Err(match version {
                0 => OpenError::Foreign {
                    path: path.to_path_buf(),
                    what: "no schema yet".into(),
                },
                v if v > SCHEMA_VERSION => OpenError::Newer {
                    path: path.to_path_buf(),
                    found: v,
                },
                v => OpenError::Io {
                    path: path.to_path_buf(),
                    error: format!("schema {v}: start the node once to migrate it"),
                },
            });
        }
        history.load()?;
        Ok(history)
    }

    fn checked(conn: Connection, path: &Path) -> Result<History, OpenError> {
        let _ = conn.busy_timeout(Duration::from_secs(5));
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| sql_error(path, e))?;
        if check != "ok" {
            return Err(OpenError::Damaged {
                path: path.to_path_buf(),
                detail: check,
            });
        }
        let app: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| sql_error(path, e))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| sql_error(path, e))?;
        if app != APPLICATION_ID && !(app == 0 && tables == 0) {
            return Err(OpenError::Foreign {
                path: path.to_path_buf(),
                what: format!("an SQLite file of application id {app:#x} with {tables} objects"),
            });
        }
        Ok(History {
            conn,
            path: path.to_path_buf(),
            nodes: HashMap::new(),
            reasons: HashMap::new(),
        })
    }

    fn err(&self, e: rusqlite::Error) -> OpenError {
        sql_error(&self.path, e)
    }

    fn user_version(&self) -> Result<i64, OpenError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn migrate(&mut self) -> Result<(), OpenError> {
        let mut version = self.user_version()?;
        if version > SCHEMA_VERSION {
            return Err(OpenError::Newer {
                path: self.path.clone(),
                found: version,
            });
        }
        while version < SCHEMA_VERSION {
            let step = MIGRATIONS[version as usize];
            let tx = self
                .conn
                .transaction()
                .map_err(|e| sql_error(&self.path, e))?;
            tx.execute_batch(step)
                .and_then(|_| tx.pragma_update(None, "application_id", APPLICATION_ID))
                .and_then(|_| tx.pragma_update(None, "user_version", version + 1))
                .and_then(|_| tx.commit())
                .map_err(|e| sql_error(&self.path, e))?;
            version += 1;
        }
        Ok(())
    }

    /// Marks the file as `owner`'s, or refuses another node's.
    fn claim(&mut self, owner: &str) -> Result<(), OpenError> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'node'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match found {
            Some(o) if o != owner => Err(OpenError::Owner {
                path: self.path.clone(),
                owner: o,
            }),
            Some(_) => Ok(()),
            None => self
                .conn
                .execute("INSERT INTO meta(key, value) VALUES ('node', ?1)", [owner])
                .map(drop)
                .map_err(|e| self.err(e)),
        }
    }

    /// Node ids, their last verdicts and the reasons' ids, into memory.
    fn load(&mut self) -> Result<(), OpenError> {
        let mut nodes = HashMap::new();
        {
            let mut q = self
                .conn
                .prepare(
                    "SELECT n.peer_id, n.id, (SELECT verdict FROM probes p WHERE p.node = n.id ORDER BY at_s DESC LIMIT 1) FROM nodes n",
                )
                .map_err(|e| sql_error(&self.path, e))?;
            let rows = q
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                })
                .map_err(|e| sql_error(&self.path, e))?;
            for row in rows {
                let (peer, id, last) = row.map_err(|e| sql_error(&self.path, e))?;
                nodes.insert(peer, (id, last.map(verdict_of)));
            }
        }
        let mut reasons = HashMap::new();
        {
            let mut q = self
                .conn
                .prepare("SELECT text, id FROM reasons")
                .map_err(|e| sql_error(&self.path, e))?;
            let rows = q
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(|e| sql_error(&self.path, e))?;
            for row in rows {
                let (text, id) = row.map_err(|e| sql_error(&self.path, e))?;
                reasons.insert(text, id);
            }
        }
        self.nodes = nodes;
        self.reasons = reasons;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a probe; the change, when its verdict differs from the last.
    pub fn record(&mut self, p: &ProbeRecord) -> rusqlite::Result<Option<Change>> {
        Ok(self.record_all(std::slice::from_ref(p))?.pop())
    }

    /// Stores a round of probes in one transaction; the changes.
    pub fn record_all(&mut self, probes: &[ProbeRecord]) -> rusqlite::Result<Vec<Change>> {
        let tx = self.conn.transaction()?;
        let mut changes = Vec::new();
        let mut learned = Vec::new();
        for p in probes {
            if let Some(c) = Self::record_in(&tx, &self.nodes, &self.reasons, &mut learned, p)? {
                changes.push(c);
            }
        }
        tx.commit()?;
        // Memory follows only what was committed.
        for (p, node, reason) in learned {
            self.nodes.insert(p.peer.clone(), (node, Some(p.verdict)));
            if reason != 0 {
                self.reasons.insert(p.reason.clone(), reason);
            }
        }
        Ok(changes)
    }

    fn record_in<'p>(
        tx: &rusqlite::Transaction<'_>,
        nodes: &HashMap<String, (i64, Option<Verdict>)>,
        reasons: &HashMap<String, i64>,
        learned: &mut Vec<(&'p ProbeRecord, i64, i64)>,
        p: &'p ProbeRecord,
    ) -> rusqlite::Result<Option<Change>> {
        let at_s = secs(p.at);
        // What this transaction already learned comes first.
        let known = learned
            .iter()
            .rev()
            .find(|(q, _, _)| q.peer == p.peer)
            .map(|(q, node, _)| (*node, Some(q.verdict)))
            .or_else(|| nodes.get(&p.peer).copied());
        let known_reason = learned
            .iter()
            .find(|(q, _, r)| *r != 0 && q.reason == p.reason)
            .map(|(_, _, r)| *r)
            .or_else(|| reasons.get(&p.reason).copied());
        let (node, last) = match known {
            Some(known) => known,
            None => {
                tx.execute(
                    "INSERT INTO nodes(peer_id, first_seen_s) VALUES (?1, ?2)",
                    params![p.peer, at_s],
                )?;
                (tx.last_insert_rowid(), None)
            }
        };
        let reason = if p.reason.is_empty() {
            0
        } else if let Some(id) = known_reason {
            id
        } else {
            tx.execute("INSERT INTO reasons(text) VALUES (?1)", [&p.reason])?;
            tx.last_insert_rowid()
        };
        tx.execute(
            "INSERT OR REPLACE INTO probes(node, at_s, verdict, reason, rtt_us, probe_us, dag, dag_heads) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![node, at_s, p.verdict.level(), reason, micros(p.rtt), micros(p.probe_time), p.dag.map(|d| d.code().0), p.dag.map(|d| d.code().1)],
        )?;
        let change = (last != Some(p.verdict)).then(|| Change {
            peer: p.peer.clone(),
            at_s,
            old: last,
            new: p.verdict,
            reason: p.reason.clone(),
        });
        if let Some(c) = &change {
            tx.execute(
                "INSERT INTO changes(node, at_s, old, new, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    node,
                    at_s,
                    c.old.map(Verdict::level),
                    c.new.level(),
                    c.reason
                ],
            )?;
        }
        learned.push((p, node, reason));
        Ok(change)
    }

    /// Deletes what is older than `before`; the probe rows removed.
    pub fn prune(&mut self, before: SystemTime) -> rusqlite::Result<usize> {
        let cut = secs(before);
        let removed = self
            .conn
            .execute("DELETE FROM probes WHERE at_s < ?1", [cut])?;
        self.conn
            .execute("DELETE FROM changes WHERE at_s < ?1", [cut])?;
        self.conn
            .execute("DELETE FROM reachability WHERE at_s < ?1", [cut])?;
        Ok(removed)
    }

    /// Every probe since `since`: (peer, at_s, verdict, reason, rtt, probe time),
    /// by node then time.
    pub fn probes_since(&self, since: SystemTime) -> rusqlite::Result<Vec<StoredProbe>> {
        self.probes_where("p.at_s >= ?1", params![secs(since)])
    }

    /// One node's probes since `since`.
    pub fn probes_of(&self, peer: &str, since: SystemTime) -> rusqlite::Result<Vec<StoredProbe>> {
        self.probes_where(
            "p.at_s >= ?1 AND n.peer_id = ?2",
            params![secs(since), peer],
        )
    }

    fn probes_where(
        &self,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> rusqlite::Result<Vec<StoredProbe>> {
        let mut q = self.conn.prepare(&format!(
            "SELECT n.peer_id, p.at_s, p.verdict, coalesce(r.text, ''), p.rtt_us, p.probe_us, p.dag, p.dag_heads
             FROM probes p JOIN nodes n ON n.id = p.node LEFT JOIN reasons r ON r.id = p.reason
             WHERE {filter} ORDER BY n.peer_id, p.at_s"
        ))?;
        let rows = q.query_map(args, |r| {
            Ok(StoredProbe {
                peer: r.get(0)?,
                at_s: r.get(1)?,
                verdict: verdict_of(r.get(2)?),
                reason: r.get(3)?,
                rtt_us: r.get(4)?,
                probe_us: r.get(5)?,
                dag: r.get::<_, Option<i64>>(6)?.and_then(|c| {
                    DagSync::from_code(c, r.get::<_, Option<i64>>(7).ok().flatten().unwrap_or(0))
                }),
            })
        })?;
        rows.collect()
    }

    /// Verdict changes since `since` (of one node, or all), oldest first.
    pub fn changes_since(
        &self,
        since: SystemTime,
        peer: Option<&str>,
    ) -> rusqlite::Result<Vec<Change>> {
        let mut q = self.conn.prepare(
            "SELECT n.peer_id, c.at_s, c.old, c.new, c.reason FROM changes c JOIN nodes n ON n.id = c.node
             WHERE c.at_s >= ?1 AND (?2 IS NULL OR n.peer_id = ?2) ORDER BY c.at_s, c.rowid",
        )?;
        let rows = q.query_map(params![secs(since), peer], |r| {
            Ok(Change {
                peer: r.get(0)?,
                at_s: r.get(1)?,
                old: r.get::<_, Option<i64>>(2)?.map(verdict_of),
                new: verdict_of(r.get(3)?),
                reason: r.get(4)?,
            })
        })?;
        rows.collect()
    }

    /// When each node was first seen (seconds since the epoch).
    pub fn first_seen(&self) -> rusqlite::Result<HashMap<String, i64>> {
        let mut q = self
            .conn
            .prepare("SELECT peer_id, first_seen_s FROM nodes")?;
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }
}

/// A probe row as read back.
#[derive(Clone, Debug)]
pub struct StoredProbe {
    pub peer: String,
    pub at_s: i64,
    pub verdict: Verdict,
    pub reason: String,
    pub rtt_us: Option<i64>,
    pub probe_us: Option<i64>,
    pub dag: Option<DagSync>,
}

#[path = "store_reach.rs"]
mod reach;
pub use reach::StoredReach;

#[cfg(test)]
#[path = "store_test.rs"]
mod tests;
