//! The node's updates as the console's actions. An attached console whose
//! node goes away says so, keeps what it showed, and links again when the
//! node is back: the new link's snapshot resynchronises every view.

use std::time::Duration;

use tokio::sync::mpsc;

use super::action::Action;
use super::reached::Reconnect;
use crate::control::{Update, Updates};

/// Tries to link again this often at first, doubling up to the longest.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_LONGEST: Duration = Duration::from_secs(5);

/// Pumps `updates` into `tx`; when they end, links again through
/// `reconnect` (if given) and goes on with the new link.
pub async fn pump(mut updates: Updates, tx: mpsc::Sender<Action>, reconnect: Option<Reconnect>) {
    loop {
        while let Some(update) = updates.recv().await {
            for action in actions_of(update) {
                if tx.send(action).await.is_err() {
                    return;
                }
            }
        }
        let Some(reconnect) = &reconnect else {
            let _ = tx.send(Action::Notice("the node is gone".into())).await;
            return;
        };
        if tx.send(Action::NodeGone).await.is_err() {
            return;
        }
        let mut wait = RETRY_FIRST;
        loop {
            tokio::time::sleep(wait).await;
            match reconnect().await {
                Ok((link, fresh)) => {
                    updates = fresh;
                    if tx.send(Action::Relinked(link)).await.is_err() {
                        return;
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!("re-attaching: {e}");
                    wait = (wait * 2).min(RETRY_LONGEST);
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    }
}

fn actions_of(update: Update) -> Vec<Action> {
    match update {
        Update::Event(ev) => vec![Action::Node(ev)],
        Update::Peers(peers) => vec![Action::Peers(peers)],
        Update::Routes(table) => vec![Action::Routes(table)],
        Update::Subnet(s) => vec![Action::SubnetStats {
            mesh: s.mesh,
            dag: s.dag,
        }],
        Update::Snapshot(snap) => vec![
            Action::Listening(snap.listen.iter().map(|a| a.to_string()).collect()),
            Action::Peers(snap.peers),
            Action::Routes(Box::new(snap.routes)),
            Action::SubnetStats {
                mesh: snap.subnet.mesh,
                dag: snap.subnet.dag,
            },
        ],
        Update::Log { level, line } => vec![Action::Log(line, level.into())],
        Update::Gap { missed } => vec![Action::NodeEventsMissed(missed)],
    }
}
