//! One task per context: reach the node (socket or ssh) as a quiet client,
//! ask for its figures every `interval`, and say why when it cannot. A
//! node that is down, slow or whose ssh fails only ever holds up its own
//! task; it is tried again with backoff.

use std::time::Duration;

use tokio::sync::mpsc;

use super::contexts::Context;
use crate::control::client;
use crate::control::message::Greeting;
use crate::control::{NodeInfo, NodeStats, Reply, Request, Role};

/// Default time between two figures of one node.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Default longest wait for a node to answer (a connection, ssh's included,
/// or one request).
pub const DEFAULT_ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Default longest wait between two tries to reach a node that is down.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug)]
pub struct ProbeOptions {
    pub interval: Duration,
    pub answer_within: Duration,
    pub retry_max: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            interval: DEFAULT_POLL_INTERVAL,
            answer_within: DEFAULT_ANSWER_WITHIN,
            retry_max: DEFAULT_RETRY_MAX,
        }
    }
}

/// What a probe learnt of its node.
#[derive(Clone, Debug)]
pub enum Probe {
    Up {
        info: Box<NodeInfo>,
        role: Role,
        stats: Box<NodeStats>,
    },
    /// Not reachable, with the reason (ssh's own words where ssh failed).
    Down { reason: String },
}

/// Starts one probe per context; each sends `(index, Probe)`. They end
/// when the receiver is dropped.
pub fn watch(contexts: &[Context], options: ProbeOptions) -> mpsc::Receiver<(usize, Probe)> {
    let (tx, rx) = mpsc::channel(contexts.len().max(1) * 4);
    for (index, context) in contexts.iter().enumerate() {
        tokio::spawn(probe(index, context.clone(), options, tx.clone()));
    }
    rx
}

async fn probe(
    index: usize,
    context: Context,
    options: ProbeOptions,
    tx: mpsc::Sender<(usize, Probe)>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let down = match once(&context, options, &tx, index).await {
            Ok(()) => return, // the receiver is gone
            Err(reason) => reason,
        };
        if tx
            .send((index, Probe::Down { reason: down }))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(options.retry_max);
    }
}

/// Polls the node until it fails (`Err`: why) or nobody listens (`Ok`).
async fn once(
    context: &Context,
    options: ProbeOptions,
    tx: &mpsc::Sender<(usize, Probe)>,
    index: usize,
) -> Result<(), String> {
    let target = context.reach()?;
    let role = if context.read_only {
        Role::Observe
    } else {
        Role::Full
    };
    let greeting = Greeting { role, quiet: true };
    let within = options.answer_within;
    let (link, _updates) = tokio::time::timeout(within, client::connect(&target, greeting))
        .await
        .map_err(|_| format!("no answer within {within:?}"))??;
    loop {
        let reply = tokio::time::timeout(within, link.request(Request::Stats).reply())
            .await
            .map_err(|_| format!("connected, but no figures within {within:?}"))?;
        let stats = match reply {
            Reply::Stats(stats) => stats,
            // A node that went away answers so too.
            Reply::Refused(why) => return Err(why),
            // A closed link reads as an error text of the link's own.
            Reply::Text(Err(e)) => return Err(e),
            other => {
                return Err(format!(
                    "the node answered {other:?}; is it older than this peerapi?"
                ))
            }
        };
        let up = Probe::Up {
            info: Box::new(link.info().clone()),
            role: link.role(),
            stats,
        };
        if tx.send((index, up)).await.is_err() {
            return Ok(());
        }
        tokio::time::sleep(options.interval).await;
    }
}
