//! The key file parser on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = peerapi::keys::decode_key(data, std::path::Path::new("fuzz.key"));
});
