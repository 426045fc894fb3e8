//! The request decoder (varint + protobuf) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cursor = futures::io::Cursor::new(data.to_vec());
    let _ = futures::executor::block_on(peerapi::wire::read_request(&mut cursor, 1 << 20));
});
