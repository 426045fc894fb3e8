//! The DAG node verifier (peer state from gossip and sync) on arbitrary
//! JSON: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = peerapi::subnet::verify(&value);
    }
});
