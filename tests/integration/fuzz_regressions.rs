//! Replays every input kept in fuzz/regressions/<target>/ through the same
//! entry points the fuzz targets use: each must give a value or an error,
//! never a panic.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression inputs for {target}");
    out
}

#[test]
fn request_decoder_regressions() {
    for (name, data) in inputs("request") {
        let mut cursor = futures::io::Cursor::new(data);
        let result = futures::executor::block_on(peerapi::wire::read_request(&mut cursor, 1 << 20));
        assert!(result.is_err(), "{name} decoded to {result:?}");
    }
}

#[test]
fn frame_decoder_regressions() {
    for (name, data) in inputs("frame") {
        let mut cursor = futures::io::Cursor::new(data);
        let result = futures::executor::block_on(async {
            let mut n = 0;
            loop {
                match peerapi::wire::read_frame(&mut cursor, 1 << 20).await {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => return Ok(n),
                    Err(e) => return Err(e),
                }
            }
        });
        assert!(result.is_err(), "{name} decoded to {result:?}");
    }
}

#[test]
fn route_parser_regressions() {
    for (name, data) in inputs("routes") {
        let text = String::from_utf8_lossy(&data);
        let outcome =
            peerapi::routes::parse_routes(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !outcome.warnings.is_empty(),
            "{name}: bad entries must be reported"
        );
    }
}

#[test]
fn key_parser_regressions() {
    for (name, data) in inputs("keys") {
        let err = peerapi::keys::decode_key(&data, Path::new(&name)).unwrap_err();
        assert!(err.to_string().contains(&name), "{name}: {err}");
    }
}
