//! What AutoNAT v2 found out about our own addresses. The client asks only
//! peers whose identify lists the dial-request protocol (it learns that
//! from the connection's protocol changes, so nothing is proposed to a
//! template node, which does not run AutoNAT); the server answers other
//! peerapi nodes' requests. The results are kept here, the newest per
//! address, for the health prober to judge.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use libp2p::autonat;

/// AutoNAT v2's dial-request protocol: a peer listing it can test us.
pub const AUTONAT_DIAL_REQUEST: &str = "/libp2p/autonat/2/dial-request";
/// Most addresses whose last test is kept (the client tests at most 10).
const MAX_TESTS_KEPT: usize = 16;

/// One test of one of our addresses by one peer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AutonatTest {
    pub addr: String,
    pub server: String,
    /// The server dialled us back at `addr`.
    pub reachable: bool,
    /// Why not, when not.
    pub error: Option<String>,
    pub at_ms: u64,
}

/// The newest test of each address, oldest first.
#[derive(Debug, Default)]
pub struct AutonatTests(Mutex<VecDeque<AutonatTest>>);

impl AutonatTests {
    pub(crate) fn record(&self, event: &autonat::v2::client::Event) {
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let test = AutonatTest {
            addr: event.tested_addr.to_string(),
            server: event.server.to_string(),
            reachable: event.result.is_ok(),
            error: event.result.as_ref().err().map(|e| e.to_string()),
            at_ms,
        };
        tracing::info!(addr = %test.addr, server = %test.server, reachable = test.reachable, error = test.error.as_deref().unwrap_or(""), "AutoNAT tested our address");
        let mut tests = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tests.retain(|t| t.addr != test.addr);
        if tests.len() >= MAX_TESTS_KEPT {
            tests.pop_front();
        }
        tests.push_back(test);
    }

    pub fn list(&self) -> Vec<AutonatTest> {
        let tests = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tests.iter().cloned().collect()
    }
}
