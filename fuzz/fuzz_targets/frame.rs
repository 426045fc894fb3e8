//! The 2.0.0 frame decoder on arbitrary bytes, frame after frame.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cursor = futures::io::Cursor::new(data.to_vec());
    futures::executor::block_on(async {
        while let Ok(Some(_)) = peerapi::wire::read_frame(&mut cursor, 1 << 20).await {}
    });
});
