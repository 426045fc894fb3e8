//! The DAG-sync request handler (JSON from any peer) on arbitrary bytes:
//! never a panic; an answer is always one JSON object.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peerapi::subnet::{sync, DagLimits, DagStore, SyncLimits};

fuzz_target!(|data: &[u8]| {
    let store = DagStore::new(DagLimits::default());
    let me = libp2p_identity::PeerId::random();
    if let Ok(out) = sync::respond(&store, &me, data, &SyncLimits::default()) {
        let v: serde_json::Value = serde_json::from_slice(&out).expect("answers are JSON");
        assert!(v.is_object());
    }
});
