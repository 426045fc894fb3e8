//! Streams still reading their request: their own budget, so that silent
//! streams (which cost a peer nothing, and peer ids cost nothing) never hold
//! a call slot.
//!
//! A stream takes a call slot only once its whole request has been read.
//! Until then it holds a ticket here; the budget is counted per peer, per
//! remote IP and node-wide. When a budget is full, a reading stream in that
//! scope is evicted to make room: the oldest stream that has sent nothing
//! yet goes first, then (only if none is silent) the oldest that is still
//! sending; a complete request is never dropped (it has left this
//! registry), and an evicted stream whose bytes had already arrived still
//! gets them read (the serving task polls its read before the eviction).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt};
use libp2p::PeerId;
use tokio_util::sync::CancellationToken;

use crate::wire::{self, ApiRequest, WireError};

/// Default most streams of one peer reading their request at once.
/// As many as a peer may have calls in flight (`DEFAULT_MAX_CALLS_PER_PEER`),
/// so a peer's honest burst is never evicted by its own streams.
pub const DEFAULT_MAX_READING_PER_PEER: usize = 64;
/// Default most streams from one remote IP reading their request at once
/// (generous: a subnet run on one machine shares 127.0.0.1).
pub const DEFAULT_MAX_READING_PER_IP: usize = 256;
/// Default most streams node-wide reading their request at once.
pub const DEFAULT_MAX_READING: usize = 1024;
/// Default time a new stream has to send the first byte of its request
/// (callers write the request right after opening the stream).
pub const DEFAULT_REQUEST_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(3);

/// The budget of streams reading their request.
#[derive(Clone, Debug)]
pub struct ReadingLimits {
    pub per_peer: usize,
    pub per_ip: usize,
    pub total: usize,
    pub first_byte_timeout: Duration,
}

impl Default for ReadingLimits {
    fn default() -> Self {
        Self {
            per_peer: DEFAULT_MAX_READING_PER_PEER,
            per_ip: DEFAULT_MAX_READING_PER_IP,
            total: DEFAULT_MAX_READING,
            first_byte_timeout: DEFAULT_REQUEST_FIRST_BYTE_TIMEOUT,
        }
    }
}

struct Entry {
    peer: PeerId,
    ip: Option<IpAddr>,
    evicted: CancellationToken,
    /// Set once the stream's first request byte has arrived.
    speaking: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    /// By arrival order: the first entry is the oldest.
    entries: BTreeMap<u64, Entry>,
    per_peer: HashMap<PeerId, usize>,
    per_ip: HashMap<IpAddr, usize>,
    next: u64,
}

impl State {
    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        decrement(&mut self.per_peer, &entry.peer);
        if let Some(ip) = &entry.ip {
            decrement(&mut self.per_ip, ip);
        }
        Some(entry)
    }

    /// Evicts the oldest silent entry that `matches`, else the oldest
    /// that `matches`, if any.
    fn evict_oldest(&mut self, matches: impl Fn(&Entry) -> bool) -> bool {
        let silent = self
            .entries
            .iter()
            .find(|(_, e)| matches(e) && !e.speaking.load(Ordering::Relaxed));
        let Some(seq) = silent
            .or_else(|| self.entries.iter().find(|(_, e)| matches(e)))
            .map(|(seq, _)| *seq)
        else {
            return false;
        };
        if let Some(entry) = self.remove(seq) {
            entry.evicted.cancel();
        }
        true
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Streams reading their request, shared by every serving task.
#[derive(Clone)]
pub(crate) struct Reading {
    state: Arc<Mutex<State>>,
    limits: ReadingLimits,
}

/// A stream's place in the reading budget; leaving it (drop) frees it.
pub(crate) struct Ticket {
    state: Arc<Mutex<State>>,
    seq: u64,
    /// Cancelled when the stream is evicted to make room for a newer one.
    pub(crate) evicted: CancellationToken,
    /// To be set when the first request byte arrives.
    pub(crate) speaking: Arc<AtomicBool>,
    /// How many older streams were evicted to admit this one.
    pub(crate) evictions: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.remove(self.seq);
    }
}

impl Reading {
    pub(crate) fn new(limits: ReadingLimits) -> Self {
        Self {
            state: Arc::default(),
            limits,
        }
    }

    pub(crate) fn limits(&self) -> &ReadingLimits {
        &self.limits
    }

    /// Admits a new stream, evicting the oldest reading streams of the same
    /// peer, then the same IP, then node-wide while a budget is full.
    pub(crate) fn admit(&self, peer: PeerId, ip: Option<IpAddr>) -> Ticket {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut evictions = 0;
        let limits = &self.limits;
        while state.per_peer.get(&peer).copied().unwrap_or(0) >= limits.per_peer.max(1)
            && state.evict_oldest(|e| e.peer == peer)
        {
            evictions += 1;
        }
        if let Some(ip) = ip {
            while state.per_ip.get(&ip).copied().unwrap_or(0) >= limits.per_ip.max(1)
                && state.evict_oldest(|e| e.ip == Some(ip))
            {
                evictions += 1;
            }
        }
        while state.entries.len() >= limits.total.max(1) && state.evict_oldest(|_| true) {
            evictions += 1;
        }
        let seq = state.next;
        state.next += 1;
        let evicted = CancellationToken::new();
        let speaking = Arc::new(AtomicBool::new(false));
        state.entries.insert(
            seq,
            Entry {
                peer,
                ip,
                evicted: evicted.clone(),
                speaking: speaking.clone(),
            },
        );
        *state.per_peer.entry(peer).or_default() += 1;
        if let Some(ip) = ip {
            *state.per_ip.entry(ip).or_default() += 1;
        }
        Ticket {
            state: self.state.clone(),
            seq,
            evicted,
            speaking,
            evictions,
        }
    }

    /// Streams reading their request now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().map(|s| s.entries.len()).unwrap_or(0)
    }
}

/// Why a request could not be read.
pub(crate) enum ReadFailure {
    Wire(WireError),
    TimedOut(String),
}

/// Reads one request: its first byte within `first_byte`, all of it within
/// `whole` (both from now).
pub(crate) async fn read_request_within<R: AsyncRead + Unpin>(
    reader: &mut R,
    first_byte: Duration,
    whole: Duration,
    max_bytes: usize,
    speaking: &AtomicBool,
) -> Result<ApiRequest, ReadFailure> {
    tokio::time::timeout(whole, async {
        let mut first = [0u8; 1];
        let n = match tokio::time::timeout(first_byte, reader.read(&mut first)).await {
            Ok(n) => n.map_err(|e| ReadFailure::Wire(WireError::Io(e)))?,
            Err(_) => {
                return Err(ReadFailure::TimedOut(format!(
                    "no request byte within {first_byte:?} of opening the stream"
                )))
            }
        };
        if n == 0 {
            return Err(ReadFailure::Wire(WireError::Empty));
        }
        speaking.store(true, Ordering::Relaxed);
        let mut chained = futures::io::Cursor::new(first).chain(reader);
        wire::read_request(&mut chained, max_bytes)
            .await
            .map_err(ReadFailure::Wire)
    })
    .await
    .unwrap_or_else(|_| {
        Err(ReadFailure::TimedOut(format!(
            "request not received within {whole:?}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(per_peer: usize, per_ip: usize, total: usize) -> Reading {
        Reading::new(ReadingLimits {
            per_peer,
            per_ip,
            total,
            first_byte_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn a_full_peer_budget_evicts_that_peers_oldest_stream() {
        let r = reading(2, 100, 100);
        let a = PeerId::random();
        let b = PeerId::random();
        let a1 = r.admit(a, None);
        let b1 = r.admit(b, None);
        let a2 = r.admit(a, None);
        let a3 = r.admit(a, None);
        assert!(a1.evicted.is_cancelled(), "the oldest of peer a goes");
        assert!(!a2.evicted.is_cancelled() && !a3.evicted.is_cancelled());
        assert!(!b1.evicted.is_cancelled(), "another peer's stream stays");
        assert_eq!(a3.evictions, 1);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn ip_and_node_budgets_evict_the_oldest_in_their_scope() {
        let r = reading(10, 2, 3);
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        let x = r.admit(PeerId::random(), Some(ip1));
        let y = r.admit(PeerId::random(), Some(ip2));
        let z = r.admit(PeerId::random(), Some(ip1));
        let w = r.admit(PeerId::random(), Some(ip1));
        assert!(
            x.evicted.is_cancelled(),
            "ip1's oldest goes for its IP budget"
        );
        assert!(!y.evicted.is_cancelled() && !z.evicted.is_cancelled());
        let v = r.admit(PeerId::random(), None);
        assert!(y.evicted.is_cancelled(), "the node-wide oldest goes next");
        assert!(!w.evicted.is_cancelled() && !v.evicted.is_cancelled());
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_stream_that_is_sending_is_evicted_only_when_none_is_silent() {
        let r = reading(2, 100, 100);
        let p = PeerId::random();
        let sending = r.admit(p, None);
        sending.speaking.store(true, Ordering::Relaxed);
        let silent = r.admit(p, None);
        let third = r.admit(p, None);
        assert!(silent.evicted.is_cancelled(), "the silent one goes first");
        assert!(!sending.evicted.is_cancelled());
        third.speaking.store(true, Ordering::Relaxed);
        let fourth = r.admit(p, None);
        assert!(
            sending.evicted.is_cancelled(),
            "then the oldest of the rest"
        );
        assert!(!third.evicted.is_cancelled() && !fourth.evicted.is_cancelled());
    }

    #[test]
    fn a_finished_ticket_frees_its_place() {
        let r = reading(1, 1, 1);
        let p = PeerId::random();
        drop(r.admit(p, None));
        let t = r.admit(p, None);
        assert_eq!(t.evictions, 0);
        assert_eq!(r.len(), 1);
    }
}
