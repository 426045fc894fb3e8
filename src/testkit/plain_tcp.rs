//! Plain TCP beside the hop, for figures against the same link: a server
//! that echoes a ping byte or sends a body of the size asked, and the two
//! measurements a bench or a test takes of it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP server that answers each byte with one (round trips) or sends
/// `n` bytes when it reads the 8-byte count `n` (a body).
pub async fn server() -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                while s.read_exact(&mut first).await.is_ok() {
                    if first[0] == b'p' {
                        let _ = s.write_all(b"p").await;
                        continue;
                    }
                    let mut n = [0u8; 8];
                    if s.read_exact(&mut n).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = u64::from_be_bytes(n) as usize;
                    while left > 0 {
                        let take = left.min(chunk.len());
                        if s.write_all(&chunk[..take]).await.is_err() {
                            return;
                        }
                        left -= take;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The link's measured round trip: the median of byte ping-pongs over a
/// plain TCP connection to `at` (a proxy in front of [`server`]).
pub async fn round_trip(at: SocketAddr) -> Result<Duration, String> {
    let mut s = tokio::net::TcpStream::connect(at)
        .await
        .map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    let mut times = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        s.write_all(b"p").await.map_err(|e| e.to_string())?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// `bytes` from [`server`] through a plain TCP connection to `at`: its time.
pub async fn body_time(at: SocketAddr, bytes: u64) -> Result<Duration, String> {
    let mut s = tokio::net::TcpStream::connect(at)
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    s.write_all(b"n").await.map_err(|e| e.to_string())?;
    s.write_all(&bytes.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < bytes {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("plain TCP body ended after {got} bytes"));
        }
        got += n as u64;
    }
    Ok(t.elapsed())
}
