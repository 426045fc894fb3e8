//! The serving side's limits and the per-peer call counter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use libp2p::PeerId;

use crate::protocol::admission::ReadingLimits;
use crate::wire;

/// Default most calls served at once; past it new calls are refused at once.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 256;
/// Default most calls served at once for one peer.
pub const DEFAULT_MAX_CALLS_PER_PEER: usize = 64;
/// Default time a caller has to send its whole request.
pub const DEFAULT_REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time one write to a caller may block (a caller that stops reading).
pub const DEFAULT_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most headers a request may carry.
pub const DEFAULT_MAX_REQUEST_HEADERS: usize = 128;

/// Limits on the serving side.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    pub max_request_bytes: usize,
    pub max_concurrent_calls: usize,
    pub max_calls_per_peer: usize,
    pub max_request_headers: usize,
    pub request_read_timeout: Duration,
    pub response_write_timeout: Duration,
    /// The budget of streams still reading their request (no call slot yet).
    pub reading: ReadingLimits,
    /// Most bytes of a streamed backend body read ahead of one caller; past
    /// it the backend waits (backpressure).
    pub read_ahead_bytes_per_call: usize,
    /// Most bytes read ahead across every call of the node.
    pub read_ahead_bytes: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: wire::DEFAULT_MAX_REQUEST_BYTES,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            max_calls_per_peer: DEFAULT_MAX_CALLS_PER_PEER,
            max_request_headers: DEFAULT_MAX_REQUEST_HEADERS,
            request_read_timeout: DEFAULT_REQUEST_READ_TIMEOUT,
            response_write_timeout: DEFAULT_RESPONSE_WRITE_TIMEOUT,
            reading: ReadingLimits::default(),
            read_ahead_bytes_per_call: super::read_ahead::DEFAULT_READ_AHEAD_BYTES_PER_CALL,
            read_ahead_bytes: super::read_ahead::DEFAULT_READ_AHEAD_BYTES,
        }
    }
}

/// Counts calls per peer; the guard gives the slot back.
#[derive(Default)]
pub(super) struct PerPeer {
    counts: Mutex<HashMap<PeerId, usize>>,
}

pub(super) struct PeerSlot<'a> {
    per_peer: &'a PerPeer,
    peer: PeerId,
}

impl PerPeer {
    pub(super) fn try_take(&self, peer: PeerId, max: usize) -> Option<PeerSlot<'_>> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(peer).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            per_peer: self,
            peer,
        })
    }
}

impl Drop for PeerSlot<'_> {
    fn drop(&mut self) {
        let mut counts = self
            .per_peer
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}
