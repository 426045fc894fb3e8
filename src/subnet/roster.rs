//! The subnet's roster as its nodes announce it: the newest verified
//! peer-state node of each subnet node id (uid, epoch, state, role,
//! advertised multiaddr), bounded.

use std::collections::BTreeMap;

use libp2p::PeerId;
use serde_json::Value;

/// Default most subnet nodes remembered.
pub const DEFAULT_MAX_ROSTER: usize = 10_000;

/// One subnet node, from its latest peer state.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RosterEntry {
    pub subnet_id: u64,
    pub subnet_node_id: u64,
    pub peer_id: String,
    /// OFFLINE, JOINING or ONLINE (or the number, if unknown).
    pub state: String,
    pub role: i64,
    pub epoch: u64,
    pub multiaddr: String,
    /// When the node signed this state (ms since the epoch).
    pub last_seen_ms: u64,
}

/// The template's numbering: OFFLINE 0, JOINING 1, ONLINE 2.
pub fn state_name(n: u64) -> String {
    match n {
        0 => "OFFLINE".into(),
        1 => "JOINING".into(),
        2 => "ONLINE".into(),
        other => other.to_string(),
    }
}

#[derive(Default)]
pub struct Roster {
    entries: BTreeMap<(u64, u64), RosterEntry>,
}

impl Roster {
    /// Takes a verified peer-state payload signed by `author` at
    /// `created_at_ms`; the entry when it changed what we knew.
    pub fn apply(
        &mut self,
        author: &PeerId,
        created_at_ms: u64,
        payload: &Value,
    ) -> Option<RosterEntry> {
        let num = |k: &str| payload.get(k).and_then(Value::as_u64);
        let entry = RosterEntry {
            subnet_id: num("subnet_id")?,
            subnet_node_id: num("subnet_node_id")?,
            peer_id: author.to_string(),
            state: state_name(num("state")?),
            role: payload.get("role").and_then(Value::as_i64).unwrap_or(0),
            epoch: num("epoch").unwrap_or(0),
            multiaddr: payload
                .get("multiaddr")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            last_seen_ms: created_at_ms,
        };
        let key = (entry.subnet_id, entry.subnet_node_id);
        match self.entries.get(&key) {
            Some(old) if old.last_seen_ms >= entry.last_seen_ms => return None,
            Some(old)
                if *old
                    == RosterEntry {
                        last_seen_ms: old.last_seen_ms,
                        ..entry.clone()
                    } =>
            {
                // Same state, newer: remember when, report nothing new.
                self.entries.insert(key, entry);
                return None;
            }
            None if self.entries.len() >= DEFAULT_MAX_ROSTER => return None,
            _ => {}
        }
        self.entries.insert(key, entry.clone());
        Some(entry)
    }

    pub fn entries(&self) -> impl Iterator<Item = &RosterEntry> {
        self.entries.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn newer_states_replace_older_and_repeats_are_quiet() {
        let mut r = Roster::default();
        let p = PeerId::random();
        let s = |state| json!({"subnet_id": 1, "subnet_node_id": 2, "state": state, "role": 0, "epoch": 5, "multiaddr": "/ip4/1.2.3.4/tcp/1"});
        assert_eq!(r.apply(&p, 10, &s(1)).unwrap().state, "JOINING");
        assert_eq!(r.apply(&p, 20, &s(1)), None, "same state, newer");
        assert_eq!(r.apply(&p, 5, &s(0)), None, "older");
        assert_eq!(r.apply(&p, 30, &s(2)).unwrap().state, "ONLINE");
        assert_eq!(r.entries().count(), 1);
        assert_eq!(
            r.apply(&p, 40, &json!({"state": 2})),
            None,
            "not a peer state"
        );
    }
}
