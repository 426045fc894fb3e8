//! The Routes pane (our live table) and what we know of other peers'
//! route listings, for the composer's hints and warnings.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::control::RoutesSnapshot;
use crate::routes::{FileState, Route, RouteTable};
use crate::tui::effect::CallSpec;
use crate::wire::RouteInfo;

/// The node's route table as last heard of (a snapshot, replaced on each
/// reload): the console never holds the node's live table.
#[derive(Debug, Default)]
pub struct RouteTableView(RoutesSnapshot);

impl RouteTableView {
    pub fn current(&self) -> &RouteTable {
        &self.0.table
    }

    pub fn file_state(&self) -> &FileState {
        &self.0.file
    }

    pub fn get(&self, name: &str) -> Option<&Route> {
        self.0.table.get(name)
    }
}

#[derive(Default)]
pub struct RoutesView {
    pub table: RouteTableView,
    pub sel: usize,
    /// The last reload or rejection of the route file, and what changed.
    pub change: Option<(SystemTime, String)>,
    /// Route listings of remote peers, by the composer target they were asked for.
    pub remote: HashMap<String, Result<Vec<RouteInfo>, String>>,
}

impl RoutesView {
    /// The table as the node has it now; the selection stays in it.
    pub fn set_table(&mut self, snapshot: RoutesSnapshot) {
        self.table = RouteTableView(snapshot);
        self.sel = self.sel.min(self.len().saturating_sub(1));
    }

    pub fn len(&self) -> usize {
        self.table.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The selected route's name.
    pub fn selected_name(&self) -> Option<String> {
        self.table.current().keys().nth(self.sel).cloned()
    }

    /// `true` the first time `target` (a valid peer address) is seen: the
    /// app should ask that peer for its listing.
    pub fn should_fetch(&mut self, target: &str) -> bool {
        if crate::node::parse_peer_addr(target).is_err() || self.remote.contains_key(target) {
            return false;
        }
        self.remote
            .insert(target.to_string(), Err("asking…".into()));
        true
    }

    /// A warning when the target's listing says the call cannot work.
    pub fn listing_warning(&self, spec: &CallSpec) -> Option<String> {
        let Some(Ok(routes)) = self.remote.get(&spec.target) else {
            return None;
        };
        match routes.iter().find(|r| r.name == spec.request.route) {
            None => Some(format!(
                "the peer lists no route '{}': send again to send anyway",
                spec.request.route
            )),
            Some(r) if spec.stream && !r.stream => Some(format!(
                "route '{}' is unary on that peer (m switches to unary): send again to send anyway",
                r.name
            )),
            _ => None,
        }
    }
}
