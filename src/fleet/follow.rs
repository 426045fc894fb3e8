//! Following nodes for the fleet-wide panes: the calls each node serves and
//! its log lines, from every node at once. Only while such a pane is open:
//! each followed node gets one observing control client (not a quiet one),
//! and what it hears is offered to the view without waiting, so a busy
//! node can never hold the view or the other nodes up (what does not fit
//! is counted, not queued).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::contexts::Context;
use crate::control::{client, Role, Update};
use crate::node::NodeEvent;

/// Most entries a fleet-wide pane keeps.
pub const MAX_FEED_ENTRIES: usize = 1000;
/// Most served calls a follower remembers between start and end.
const MAX_OPEN_CALLS: usize = 4096;

/// What a followed node said.
#[derive(Clone, Debug, PartialEq)]
pub enum Heard {
    Served {
        at: SystemTime,
        peer: String,
        route: String,
        outcome: String,
        elapsed: Duration,
        bytes: u64,
    },
    Log {
        at: SystemTime,
        level: String,
        line: String,
    },
    /// The follower lost the node (or could not reach it).
    Lost { at: SystemTime, why: String },
    /// A fleet-wide action's result on this node.
    Action {
        at: SystemTime,
        ok: bool,
        text: String,
    },
}

impl Heard {
    pub fn at(&self) -> SystemTime {
        match self {
            Heard::Served { at, .. }
            | Heard::Log { at, .. }
            | Heard::Lost { at, .. }
            | Heard::Action { at, .. } => *at,
        }
    }
}

/// Followers of some nodes; they stop when this is dropped.
pub struct Followers {
    tasks: Vec<AbortHandle>,
}

impl Drop for Followers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Follows `contexts[i]` for each `i` in `which`; each sends `(i, Heard)`.
pub fn follow(
    contexts: &[Context],
    which: &[usize],
    capacity: usize,
) -> (Followers, mpsc::Receiver<(usize, Heard)>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let tasks = which
        .iter()
        .filter_map(|&i| contexts.get(i).map(|c| (i, c.clone())))
        .map(|(i, c)| tokio::spawn(follow_one(i, c, tx.clone())).abort_handle())
        .collect();
    (Followers { tasks }, rx)
}

async fn follow_one(index: usize, context: Context, tx: mpsc::Sender<(usize, Heard)>) {
    let lost = |why: String| Heard::Lost {
        at: SystemTime::now(),
        why,
    };
    let target = match context.reach() {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.try_send((index, lost(e)));
            return;
        }
    };
    let (_link, mut updates) = match client::connect(&target, Role::Observe).await {
        Ok(l) => l,
        Err(e) => {
            let _ = tx.try_send((index, lost(e)));
            return;
        }
    };
    // Served calls between their start and end: peer and route.
    let mut open: HashMap<u64, (String, String)> = HashMap::new();
    while let Some(update) = updates.recv().await {
        let heard = match update {
            Update::Event(NodeEvent::ServeStarted {
                id, peer, route, ..
            }) => {
                if open.len() < MAX_OPEN_CALLS {
                    open.insert(id.0, (peer.to_string(), route));
                }
                continue;
            }
            Update::Event(NodeEvent::ServeFinished {
                id,
                outcome,
                bytes,
                elapsed,
                ..
            }) => {
                let (peer, route) = open.remove(&id.0).unwrap_or_default();
                Heard::Served {
                    at: SystemTime::now(),
                    peer,
                    route,
                    outcome: outcome.to_string(),
                    elapsed,
                    bytes,
                }
            }
            Update::Log { level, line } => Heard::Log {
                at: SystemTime::now(),
                level: format!("{level:?}").to_uppercase(),
                line,
            },
            _ => continue,
        };
        // Never waits: a full view skips what it has no room for.
        if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send((index, heard)) {
            return;
        }
    }
    let _ = tx.try_send((index, lost("the node's connection closed".into())));
}
