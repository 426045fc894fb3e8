//! Reference rows measured in the same run as the hop: the physical limits
//! it works within on this machine, so targets are ratios that hold from one
//! machine to the next.
//!
//! - ChaCha20-Poly1305 sealing on one core at the Noise frame size: every
//!   byte through the hop is sealed once by one side and opened once by the
//!   other, so this is the ceiling of one direction of one connection. It is
//!   ring's, which libp2p-noise uses on native targets.
//! - Raw loopback TCP through one connection: the transport under it all.
//! - A one-byte round trip between two threads over loopback TCP, each
//!   asleep in a blocking read until the other writes: the cost of waking
//!   another thread or process, which a call between processes pays at
//!   least twice (caller to node and back, node to backend and back).

use std::time::{Duration, Instant};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::report::{median, Row};

/// libp2p-noise's largest cleartext frame (65535 bytes of Noise message
/// less the 1024 bytes it keeps for the tag and headroom).
pub(super) const NOISE_FRAME_BYTES: usize = 65535 - 1024;

/// The name of the ChaCha20-Poly1305 row, for the ratio rows that use it.
pub(super) const CHACHA_ROW: &str = "ChaCha20-Poly1305 seal, 1 core";
pub(super) const TCP_ROW: &str = "raw loopback TCP, 1 connection";
pub(super) const WAKE_ROW: &str = "loopback round trip between threads, p50";
/// The row the wake-up floor applies to.
const OWN_PROCESS_ROW: &str = ", node as own process";
/// Round trips of the ping-pong row per repeat.
const ROUND_TRIPS: usize = 5_000;

/// Seals Noise-sized frames for about `time` on this thread: MB/s of
/// cleartext, the median of `repeats`.
pub(super) fn chacha20_poly1305(repeats: usize, time: Duration) -> Row {
    let key = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).expect("a 32-byte key is valid"),
    );
    let mut frame = vec![0x5au8; NOISE_FRAME_BYTES];
    let mut rates = Vec::new();
    for _ in 0..repeats.max(1) {
        let (start, mut bytes, mut counter) = (Instant::now(), 0usize, 0u64);
        while start.elapsed() < time {
            // 64 frames between clock reads keep the clock out of the figure.
            for _ in 0..64 {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_le_bytes());
                counter += 1;
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::empty(),
                        &mut frame,
                    )
                    .expect("sealing a frame under 4 GiB does not fail");
                let _ = std::hint::black_box(tag);
                bytes += frame.len();
            }
        }
        rates.push(bytes as f64 / 1e6 / start.elapsed().as_secs_f64());
    }
    Row {
        name: CHACHA_ROW.into(),
        direct: None,
        hop: median(rates),
        unit: "MB/s".into(),
        note: format!("ring, {NOISE_FRAME_BYTES}-byte frames (libp2p-noise's largest)"),
    }
}

/// Pushes bytes through one loopback TCP connection for about `time`: MB/s
/// received, the median of `repeats`.
pub(super) async fn loopback_tcp(repeats: usize, time: Duration) -> Result<Row, String> {
    let mut rates = Vec::new();
    for _ in 0..repeats.max(1) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on loopback: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let sender = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await?;
            let chunk = vec![0xa5u8; 256 * 1024];
            let start = Instant::now();
            while start.elapsed() < time {
                conn.write_all(&chunk).await?;
            }
            conn.shutdown().await
        });
        let mut conn = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect on loopback: {e}"))?;
        let mut buf = vec![0u8; 256 * 1024];
        let (start, mut got) = (Instant::now(), 0usize);
        loop {
            match conn.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(format!("loopback read failed: {e}")),
            }
        }
        rates.push(got as f64 / 1e6 / start.elapsed().as_secs_f64());
        sender
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("loopback write failed: {e}"))?;
    }
    Ok(Row {
        name: TCP_ROW.into(),
        direct: None,
        hop: median(rates),
        unit: "MB/s".into(),
        note: "256 KiB writes and reads, no encryption".into(),
    })
}

/// One byte back and forth between two blocking threads, `ROUND_TRIPS`
/// times: the p50 round trip, the median of `repeats`.
pub(super) fn loopback_round_trip(repeats: usize) -> Result<Row, String> {
    use std::io::{Read, Write};
    let mut p50s = Vec::new();
    for _ in 0..repeats.max(1) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot listen on loopback: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let echo = std::thread::spawn(move || -> std::io::Result<()> {
            let (mut conn, _) = listener.accept()?;
            conn.set_nodelay(true)?;
            let mut b = [0u8; 1];
            while conn.read(&mut b)? == 1 {
                conn.write_all(&b)?;
            }
            Ok(())
        });
        let mut conn = std::net::TcpStream::connect(addr)
            .map_err(|e| format!("cannot connect on loopback: {e}"))?;
        conn.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut times = Vec::with_capacity(ROUND_TRIPS);
        let mut b = [0u8; 1];
        for _ in 0..ROUND_TRIPS {
            let t = Instant::now();
            conn.write_all(&b)
                .and_then(|_| conn.read_exact(&mut b))
                .map_err(|e| format!("loopback round trip failed: {e}"))?;
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        drop(conn);
        echo.join()
            .map_err(|_| "the echo thread panicked".to_string())?
            .map_err(|e| format!("the echo thread failed: {e}"))?;
        p50s.push(median(times));
    }
    Ok(Row {
        name: WAKE_ROW.into(),
        direct: None,
        hop: median(p50s),
        unit: "us".into(),
        note: format!("1 byte each way, blocking reads, {ROUND_TRIPS} round trips"),
    })
}

/// The hop's large-body rows as a share of each reference row: `direct`
/// holds the reference, `hop` the large body, so the ratio column is the
/// share (the target for ChaCha20-Poly1305 is 0.6).
pub(super) fn shares(rows: &[Row]) -> Vec<Row> {
    let find = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.hop);
    let mut out = Vec::new();
    for body in rows.iter().filter(|r| r.name.ends_with("large body")) {
        for (reference, target) in [(CHACHA_ROW, "target 0.60"), (TCP_ROW, "no target")] {
            if let Some(limit) = find(reference) {
                out.push(Row {
                    name: format!(
                        "{} / {}",
                        body.name,
                        reference.split(',').next().unwrap_or(reference)
                    ),
                    direct: Some(limit),
                    hop: body.hop,
                    unit: "MB/s".into(),
                    note: format!("ratio = share of the reference; {target}"),
                });
            }
        }
    }
    // A call between processes wakes the node, the backend, the node and
    // the caller in turn: two round trips are its floor.
    if let Some(wake) = find(WAKE_ROW) {
        for own in rows.iter().filter(|r| r.name.ends_with(OWN_PROCESS_ROW)) {
            out.push(Row {
                name: format!(
                    "{}, own process / 2 RTT",
                    own.name.trim_end_matches(OWN_PROCESS_ROW)
                ),
                direct: Some(2.0 * wake),
                hop: own.hop,
                unit: "us".into(),
                note: "ratio = multiple of the floor: 2 wake-up round trips between threads".into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_large_body_row_gets_a_share_of_each_reference() {
        let row = |name: &str, hop: f64| Row {
            name: name.into(),
            direct: None,
            hop,
            unit: "MB/s".into(),
            note: String::new(),
        };
        let rows = [
            row(CHACHA_ROW, 2000.0),
            row(TCP_ROW, 4000.0),
            row("stream 2.0.0 large body", 1000.0),
            row("stream 2.0.0 small chunks", 9.0),
        ];
        let shares = shares(&rows);
        assert_eq!(shares.len(), 2, "no wake-up row, no floor row");
        assert_eq!(
            shares[0].name,
            "stream 2.0.0 large body / ChaCha20-Poly1305 seal"
        );
        assert_eq!((shares[0].direct, shares[0].hop), (Some(2000.0), 1000.0));
        assert_eq!(shares[1].direct, Some(4000.0));

        let mut rows = rows.to_vec();
        rows.push(Row {
            unit: "us".into(),
            ..row(WAKE_ROW, 80.0)
        });
        rows.push(Row {
            unit: "us".into(),
            ..row("unary 2.0.0 c=1 p50, node as own process", 400.0)
        });
        let shares = super::shares(&rows);
        let floor = shares.last().unwrap();
        assert_eq!(floor.name, "unary 2.0.0 c=1 p50, own process / 2 RTT");
        assert_eq!((floor.direct, floor.hop), (Some(160.0), 400.0));
    }

    #[test]
    fn the_references_measure_something() {
        let chacha = chacha20_poly1305(1, Duration::from_millis(20));
        assert!(chacha.hop > 0.0, "{chacha:?}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let tcp = rt
            .block_on(loopback_tcp(1, Duration::from_millis(20)))
            .unwrap();
        assert!(tcp.hop > 0.0, "{tcp:?}");
        let wake = loopback_round_trip(1).unwrap();
        assert!(wake.hop > 0.0 && wake.hop < 1e6, "{wake:?}");
    }
}
