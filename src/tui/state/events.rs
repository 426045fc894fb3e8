//! The Events view: template nodes' telemetry as it arrives, signatures
//! checked, filtered by node and by event kind (each filter cycles through
//! the values seen).

use std::collections::{BTreeSet, VecDeque};

use crate::subnet::TelemetryEvent;

/// Most telemetry events kept for the view (the newest).
pub const MAX_EVENTS: usize = 1_000;
/// Most distinct nodes and kinds offered as filters (senders choose them).
pub const MAX_FILTER_VALUES: usize = 256;

#[derive(Default)]
pub struct EventsView {
    pub show: bool,
    /// Newest last.
    pub list: VecDeque<TelemetryEvent>,
    pub verified: u64,
    pub unverified: u64,
    /// Dropped from the front once `MAX_EVENTS` were kept.
    pub dropped: u64,
    /// Nodes (subnet node id, or peer id when none) and kinds seen.
    pub nodes: BTreeSet<String>,
    pub kinds: BTreeSet<String>,
    pub node_filter: Option<String>,
    pub kind_filter: Option<String>,
}

/// How the view names an event's sender.
pub fn node_of(ev: &TelemetryEvent) -> String {
    match (ev.subnet_node_id, &ev.peer_id) {
        (Some(n), _) => n.to_string(),
        (None, Some(p)) => p.clone(),
        (None, None) => "?".into(),
    }
}

fn kind_of(ev: &TelemetryEvent) -> String {
    ev.event.clone().unwrap_or_else(|| "?".into())
}

/// The value after `current` in `values`, then none again.
fn cycle(values: &BTreeSet<String>, current: &Option<String>) -> Option<String> {
    match current {
        None => values.iter().next().cloned(),
        Some(c) => values
            .range::<String, _>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
            .next()
            .cloned(),
    }
}

impl EventsView {
    pub fn push(&mut self, ev: TelemetryEvent) {
        if ev.verified {
            self.verified += 1;
        } else {
            self.unverified += 1;
        }
        for (set, value) in [
            (&mut self.nodes, node_of(&ev)),
            (&mut self.kinds, kind_of(&ev)),
        ] {
            if set.len() < MAX_FILTER_VALUES {
                set.insert(value);
            }
        }
        if self.list.len() >= MAX_EVENTS {
            self.list.pop_front();
            self.dropped += 1;
        }
        self.list.push_back(ev);
    }

    pub fn cycle_node(&mut self) {
        self.node_filter = cycle(&self.nodes, &self.node_filter);
    }

    pub fn cycle_kind(&mut self) {
        self.kind_filter = cycle(&self.kinds, &self.kind_filter);
    }

    /// The events the filters let through, newest first.
    pub fn shown(&self) -> impl Iterator<Item = &TelemetryEvent> {
        self.list.iter().rev().filter(|ev| {
            self.node_filter.as_ref().is_none_or(|n| *n == node_of(ev))
                && self.kind_filter.as_ref().is_none_or(|k| *k == kind_of(ev))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(node: u64, kind: &str, verified: bool) -> TelemetryEvent {
        TelemetryEvent {
            from: "127.0.0.1:1".into(),
            event: Some(kind.into()),
            peer_id: None,
            subnet_id: Some(1),
            subnet_node_id: Some(node),
            timestamp: None,
            data: serde_json::Value::Null,
            verified,
            error: None,
        }
    }

    #[test]
    fn filters_cycle_through_what_was_seen_and_back_to_all() {
        let mut v = EventsView::default();
        v.push(ev(1, "heartbeat", true));
        v.push(ev(2, "heartbeat", true));
        v.push(ev(2, "node_started", false));
        assert_eq!(v.shown().count(), 3);
        v.cycle_node();
        assert_eq!(v.node_filter.as_deref(), Some("1"));
        assert_eq!(v.shown().count(), 1);
        v.cycle_node();
        v.cycle_kind();
        assert_eq!(v.kind_filter.as_deref(), Some("heartbeat"));
        assert_eq!(v.shown().count(), 1);
        v.cycle_node();
        assert_eq!(v.node_filter, None);
        assert_eq!(v.shown().count(), 2);
        assert_eq!((v.verified, v.unverified), (2, 1));
    }

    #[test]
    fn the_list_and_the_filter_values_are_bounded() {
        let mut v = EventsView::default();
        for n in 0..(MAX_EVENTS as u64 + 10) {
            v.push(ev(n, &format!("k{n}"), true));
        }
        assert_eq!(v.list.len(), MAX_EVENTS);
        assert_eq!(v.dropped, 10);
        assert_eq!(v.nodes.len(), MAX_FILTER_VALUES);
        assert_eq!(v.kinds.len(), MAX_FILTER_VALUES);
    }
}
