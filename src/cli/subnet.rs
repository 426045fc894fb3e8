//! The subnet flags of every node-running command (DAG sync and the DAG
//! held), and later `peerapi subnet`.

use clap::Args;
use peerapi::subnet::{self, gossip, store, sync};

#[derive(Args, Debug, Clone)]
pub(crate) struct SubnetArgs {
    /// Do not serve /subnet/merkle_dag_sync_protocol/1.0.0 (template nodes that start
    /// while we are connected then wait for our inventory forever).
    #[arg(long)]
    pub no_dag_sync: bool,
    /// Largest DAG-sync request read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = sync::DEFAULT_MAX_SYNC_REQUEST_BYTES)]
    pub max_sync_request_bytes: usize,
    /// DAG-sync streams served at once, node-wide.
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_MAX_SYNC_STREAMS)]
    pub max_sync_streams: usize,
    /// DAG-sync streams served at once for one peer.
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_MAX_SYNC_STREAMS_PER_PEER)]
    pub max_sync_streams_per_peer: usize,
    /// Most DAG nodes held per namespace; more are refused and counted.
    #[arg(long, value_name = "N", default_value_t = store::DEFAULT_MAX_DAG_NODES)]
    pub max_dag_nodes: usize,
    /// Most bytes of DAG nodes held across namespaces.
    #[arg(long, value_name = "BYTES", default_value_t = store::DEFAULT_MAX_DAG_BYTES)]
    pub max_dag_bytes: usize,
    /// Do not join the subnet's gossip (/meshsub/2.0.0).
    #[arg(long)]
    pub no_gossip: bool,
    /// Gossip topic to subscribe to and relay (repeatable; default: peer_state).
    #[arg(long = "gossip-topic", value_name = "TOPIC")]
    pub gossip_topics: Vec<String>,
    /// Largest gossip message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = gossip::DEFAULT_MAX_GOSSIP_MESSAGE_BYTES)]
    pub max_gossip_message_bytes: usize,
}

impl SubnetArgs {
    pub(crate) fn apply(&self, config: &mut subnet::SubnetConfig) {
        config.dag_sync = !self.no_dag_sync;
        config.sync.max_request_bytes = self.max_sync_request_bytes;
        config.sync.max_streams = self.max_sync_streams;
        config.sync.max_streams_per_peer = self.max_sync_streams_per_peer;
        config.dag.max_nodes_per_namespace = self.max_dag_nodes;
        config.dag.max_bytes = self.max_dag_bytes;
        config.gossip.enabled = !self.no_gossip;
        if !self.gossip_topics.is_empty() {
            config.gossip.topics = self.gossip_topics.clone();
        }
        config.gossip.max_message_bytes = self.max_gossip_message_bytes;
    }
}
