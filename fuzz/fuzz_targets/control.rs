//! Control messages from a client, as the node's socket reads them:
//! arbitrary frames never panic, and what decodes encodes again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peerapi::control::{frame, ToNode};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = frame::decode::<ToNode>(data) {
        let again = frame::encode(&message).expect("a decoded message encodes");
        let _ = frame::decode::<ToNode>(&again).expect("and decodes again");
    }
});
