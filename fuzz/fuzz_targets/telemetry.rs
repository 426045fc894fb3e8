//! The telemetry event verifier (WebSocket text from anyone) on arbitrary
//! text: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = peerapi::subnet::telemetry::verify_event(text);
        let _ = peerapi::subnet::telemetry::judge("fuzz", text);
    }
});
