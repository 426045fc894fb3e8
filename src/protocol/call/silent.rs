//! Links the node found silent (a ping went unanswered, so the node closed
//! the connection). A call streaming over such a link ends at once with
//! that reason: whether the muxer wakes a stream whose connection was
//! closed under it is the muxer's business, and the caller must not wait
//! on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::Notify;

use super::CallError;

/// Most peers remembered (each silence bumps a counter; an old entry is
/// dropped when full, which at worst leaves a call to its own timeouts).
const MAX_PEERS: usize = 4096;

#[derive(Clone, Default)]
pub struct SilentLinks(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Per peer: how many times its link went silent, and the ping timeout.
    seen: Mutex<HashMap<PeerId, (u64, Duration)>>,
    changed: Notify,
}

impl SilentLinks {
    /// How many times `peer`'s link went silent so far.
    pub fn generation(&self, peer: &PeerId) -> u64 {
        self.lock().get(peer).map_or(0, |(n, _)| *n)
    }

    /// `peer`'s link went silent (no ping answer within `after`).
    pub fn mark(&self, peer: PeerId, after: Duration) {
        {
            let mut seen = self.lock();
            if seen.len() >= MAX_PEERS && !seen.contains_key(&peer) {
                if let Some(old) = seen.keys().next().copied() {
                    seen.remove(&old);
                }
            }
            let entry = seen.entry(peer).or_insert((0, after));
            *entry = (entry.0 + 1, after);
        }
        self.0.changed.notify_waiters();
    }

    /// What a failed read on `peer`'s link should say: the node marks a
    /// link silent before it closes the connection, so a read that failed
    /// because the connection closed comes after the mark. The cause, not
    /// the symptom.
    pub fn cause_of(&self, error: CallError, peer: PeerId, generation: u64) -> CallError {
        let silenced = self
            .lock()
            .get(&peer)
            .filter(|(n, _)| *n != generation)
            .map(|(_, after)| *after);
        match (silenced, &error) {
            (_, CallError::LinkSilent { .. }) | (None, _) => error,
            (Some(after), _) => CallError::LinkSilent { peer, after },
        }
    }

    /// Resolves when `peer`'s link goes silent after `generation`, with the
    /// ping timeout that found it.
    pub async fn silenced(&self, peer: PeerId, generation: u64) -> Duration {
        loop {
            // Registered before the check, so a mark in between wakes it.
            let changed = self.0.changed.notified();
            if let Some((n, after)) = self.lock().get(&peer).copied() {
                if n != generation {
                    return after;
                }
            }
            changed.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, (u64, Duration)>> {
        self.0.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_failed_after_the_mark_names_the_silence() {
        let links = SilentLinks::default();
        let peer = PeerId::random();
        let start = links.generation(&peer);
        let closed = || CallError::Stream {
            peer,
            message: "connection is closed".into(),
        };
        assert!(matches!(
            links.cause_of(closed(), peer, start),
            CallError::Stream { .. }
        ));
        links.mark(peer, Duration::from_secs(20));
        assert!(matches!(
            links.cause_of(closed(), peer, start),
            CallError::LinkSilent { after, .. } if after == Duration::from_secs(20)
        ));
    }

    #[tokio::test]
    async fn a_call_hears_of_a_silence_after_it_began_and_not_of_one_before() {
        let links = SilentLinks::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        links.mark(a, Duration::from_secs(1));
        let start = links.generation(&a);
        let waiting = tokio::spawn({
            let links = links.clone();
            async move { links.silenced(a, start).await }
        });
        tokio::task::yield_now().await;
        links.mark(b, Duration::from_secs(2));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "another peer's silence is not ours");
        links.mark(a, Duration::from_secs(3));
        let after = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(after, Duration::from_secs(3));
    }
}
