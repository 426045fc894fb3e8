//! The control socket's flags, shared by `peerapi node` and the console.

use std::path::PathBuf;

use clap::Args;

/// The node's control socket, for `peerapi attach` and `peerapi ctl`.
#[derive(Args)]
pub(crate) struct ControlArgs {
    /// The node's name, for `attach NAME` and its endpoint record (default: its peer id).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Control socket path; its directory must be private (0700, ours).
    /// Default: $XDG_RUNTIME_DIR/peerapi/NAME.sock, or /run/peerapi for root.
    #[arg(long, value_name = "PATH", conflicts_with = "no_control")]
    control: Option<PathBuf>,
    /// Offer no control socket.
    #[arg(long)]
    pub(crate) no_control: bool,
    /// Also admit this group (a name or gid) on the control socket: its
    /// directory becomes 0750 and the socket 0660, both of that group.
    #[arg(long, value_name = "GROUP", value_parser = peerapi::control::socket::group_id)]
    control_group: Option<u32>,
    /// The most a control client may do: full, or observe (no calls,
    /// edits, dials or disconnects).
    #[arg(long, value_name = "ROLE", default_value = "full", value_parser = ["full", "observe"])]
    control_role: String,
    /// Control connections open at once.
    #[arg(long, value_name = "N", default_value_t = peerapi::control::socket::DEFAULT_MAX_CONTROL_CONNECTIONS)]
    max_control_connections: usize,
    /// Largest control message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = peerapi::control::frame::DEFAULT_MAX_MESSAGE_BYTES)]
    max_control_message_bytes: usize,
    /// Messages queued for one control client before its updates are
    /// skipped (and it is sent a fresh snapshot).
    #[arg(long, value_name = "N", default_value_t = peerapi::control::service::DEFAULT_QUEUED_MESSAGES)]
    control_queue: usize,
    /// Requests (calls, runs) of one control client in flight at once.
    #[arg(long, value_name = "N", default_value_t = peerapi::control::service::DEFAULT_REQUESTS_IN_FLIGHT)]
    control_requests: usize,
}

impl ControlArgs {
    pub(crate) fn name(&self) -> Option<String> {
        self.name.clone()
    }

    /// How to offer control for the node with `peer_id`, and its name
    /// (None: --no-control).
    pub(crate) fn options(
        &self,
        peer_id: &libp2p::PeerId,
    ) -> Option<(peerapi::control::socket::ControlOptions, String)> {
        use peerapi::control::{socket, Role};
        if self.no_control {
            return None;
        }
        let name = self.name.clone().unwrap_or_else(|| peer_id.to_string());
        let path = self
            .control
            .clone()
            .unwrap_or_else(|| socket::default_dir().join(format!("{name}.sock")));
        let mut options = socket::ControlOptions::at(path);
        options.group = self.control_group;
        options.role = if self.control_role == "observe" {
            Role::Observe
        } else {
            Role::Full
        };
        options.max_connections = self.max_control_connections.max(1);
        options.max_message_bytes = self.max_control_message_bytes.max(1024);
        options.client.queued_messages = self.control_queue.max(16);
        options.client.requests_in_flight = self.control_requests.max(1);
        Some((options, name))
    }
}
