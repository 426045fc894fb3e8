//! Our own reachability in the history: one row per round.

use std::time::SystemTime;

use rusqlite::{params, OptionalExtension};

use super::super::reach::{ReachState, Reachability};
use super::{secs, History};

/// Our reachability at one round, as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredReach {
    pub at_s: i64,
    pub state: ReachState,
    pub reason: String,
    /// Observed addresses and how many peers agree, `addr (n)`, comma-separated.
    pub observed: String,
}

impl History {
    /// Stores our reachability at `at`.
    pub fn record_reachability(
        &mut self,
        at: SystemTime,
        r: &Reachability,
    ) -> rusqlite::Result<()> {
        let observed: Vec<String> = r
            .observed
            .iter()
            .map(|o| format!("{} ({})", o.addr, o.peers))
            .collect();
        self.conn.execute(
            "INSERT OR REPLACE INTO reachability(at_s, state, reason, observed) VALUES (?1, ?2, ?3, ?4)",
            params![secs(at), r.state.level(), r.reason, observed.join(", ")],
        )?;
        Ok(())
    }

    /// The newest reachability row since `since`.
    pub fn last_reachability(&self, since: SystemTime) -> rusqlite::Result<Option<StoredReach>> {
        self.conn
            .query_row(
                "SELECT at_s, state, reason, observed FROM reachability WHERE at_s >= ?1 ORDER BY at_s DESC LIMIT 1",
                [secs(since)],
                |r| {
                    Ok(StoredReach {
                        at_s: r.get(0)?,
                        state: ReachState::from_level(r.get(1)?),
                        reason: r.get(2)?,
                        observed: r.get(3)?,
                    })
                },
            )
            .optional()
    }

    /// Share of the rounds since `since` at which we were reachable, of
    /// those that could tell (None: none could).
    pub fn reachable_share(&self, since: SystemTime) -> rusqlite::Result<Option<f64>> {
        let (told, up): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(state = 1), 0) FROM reachability WHERE at_s >= ?1 AND state != 0",
            [secs(since)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((told > 0).then(|| up as f64 / told as f64))
    }
}
