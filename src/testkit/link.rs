//! An impaired link on loopback: a TCP proxy that adds latency with
//! jitter, caps bandwidth, partitions (bytes are accepted, nothing is
//! delivered until it heals) and resets connections. The kernel's netem is
//! not available on these machines, and Toxiproxy-style tools run as a
//! server with a REST API; tests need to flip a partition from their own
//! code, mid-call, so the proxy is this small in-process one.
//!
//! A partition stops forwarding in both directions but keeps every
//! connection open, as a crashed router does: the senders' kernel buffers
//! fill, TCP sees no loss, and a healed link delivers what was held. Only
//! liveness checks above TCP (libp2p's ping) can tell the link went silent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What the link does to every byte.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Round trip added (half each way).
    pub rtt: Duration,
    /// Up to this much more, at random, per chunk (order is kept).
    pub jitter: Duration,
    /// Bytes per second each way (None: as fast as loopback).
    pub rate: Option<u64>,
    /// Each second, the chance that an open connection is reset (a flaky
    /// NAT or router dropping its state): 0.01 resets one connection in a
    /// hundred each second, at random.
    pub reset_chance: f64,
}

impl Impairment {
    /// `100ms,100mbit` (rates in kbit, mbit or gbit; the rate may be left out).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(',');
        let rtt = parts.next().unwrap_or_default().trim();
        let rtt = parse_duration(rtt)
            .ok_or_else(|| format!("{rtt:?} is not a round trip: write e.g. 100ms or 0.1s"))?;
        let rate = match parts.next().map(str::trim) {
            None | Some("") => None,
            Some(r) => Some(parse_rate(r).ok_or_else(|| {
                format!("{r:?} is not a rate: write e.g. 100mbit, 10mbit or 1gbit")
            })?),
        };
        if let Some(extra) = parts.next() {
            return Err(format!("{extra:?} after the rate: write RTT[,RATE]"));
        }
        Ok(Self {
            rtt,
            rate,
            ..Self::default()
        })
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (number, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

fn parse_rate(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (number, bits) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)]
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.to_string(), *scale)))?;
    let n: f64 = number.trim().parse().ok()?;
    let bytes = n * bits / 8.0;
    (bytes >= 1.0 && bytes.is_finite()).then_some(bytes as u64)
}

/// The proxy: listens on a loopback port and forwards to `upstream`.
pub struct LinkProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: SocketAddr,
    impairment: Mutex<Impairment>,
    /// false while partitioned.
    open: watch::Sender<bool>,
    /// Bumped by `reset`: every connection open then is reset.
    resets: watch::Sender<u64>,
    /// Connections made through the proxy so far.
    connections: std::sync::atomic::AtomicU64,
    /// Connections reset by `reset_chance` so far.
    random_resets: std::sync::atomic::AtomicU64,
    /// Bytes delivered, both directions together.
    bytes: std::sync::atomic::AtomicU64,
}

impl LinkProxy {
    pub async fn start(upstream: SocketAddr, impairment: Impairment) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            impairment: Mutex::new(impairment),
            open: watch::channel(true).0,
            resets: watch::channel(0).0,
            connections: Default::default(),
            random_resets: Default::default(),
            bytes: Default::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// A proxy in front of a node's `/ip4/…/tcp/…` address, and the same
    /// address through the proxy (the peer id kept).
    pub async fn in_front_of(
        node: &libp2p::Multiaddr,
        impairment: Impairment,
    ) -> std::io::Result<(Self, libp2p::Multiaddr)> {
        use libp2p::multiaddr::Protocol;
        let (mut ip, mut port) = (None, None);
        for p in node.iter() {
            match p {
                Protocol::Ip4(a) => ip = Some(a),
                Protocol::Tcp(p) => port = Some(p),
                _ => {}
            }
        }
        let (Some(ip), Some(port)) = (ip, port) else {
            let e = format!("{node} is not an /ip4/…/tcp/… address");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e));
        };
        let proxy = Self::start((ip, port).into(), impairment).await?;
        let through = node
            .iter()
            .map(|p| match p {
                Protocol::Tcp(_) => Protocol::Tcp(proxy.addr().port()),
                other => other,
            })
            .collect();
        Ok((proxy, through))
    }

    /// Where to dial instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Nothing is delivered either way (new connections included) until
    /// `heal`; connections stay open.
    pub fn partition(&self) {
        self.shared.open.send_replace(false);
    }

    pub fn heal(&self) {
        self.shared.open.send_replace(true);
    }

    /// Resets (RST) every connection open now.
    pub fn reset(&self) {
        self.shared.resets.send_modify(|n| *n += 1);
    }

    /// Changes the impairment for bytes read from now on.
    pub fn set(&self, impairment: Impairment) {
        *lock(&self.shared.impairment) = impairment;
    }

    /// Connections made through the proxy so far.
    pub fn connections(&self) -> u64 {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl LinkProxy {
    /// Bytes delivered through the link so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connections reset at random (`reset_chance`) so far.
    pub fn random_resets(&self) -> u64 {
        self.shared
            .random_resets
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Open connections end with their tasks: reset them.
        self.reset();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((inbound, _)) = listener.accept().await {
        shared
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(connection(inbound, shared.clone()));
    }
}

/// One proxied connection, until either side closes or a reset.
async fn connection(inbound: TcpStream, shared: Arc<Shared>) {
    let mut resets = shared.resets.subscribe();
    resets.mark_unchanged();
    // A partitioned link does not connect onwards either.
    let mut open = shared.open.subscribe();
    if open.wait_for(|o| *o).await.is_err() {
        return;
    }
    let Ok(outbound) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    // To reset: linger 0, then the last close, and the kernel sends RST
    // (a second descriptor of each socket outlives the halves; tokio's
    // own split halves would send FIN first when dropped).
    let in_sock = socket2::SockRef::from(&inbound).try_clone().ok();
    let out_sock = socket2::SockRef::from(&outbound).try_clone().ok();
    let (in_read, in_write) = tokio::io::split(inbound);
    let (out_read, out_write) = tokio::io::split(outbound);
    let both = async {
        tokio::join!(
            pipe(in_read, out_write, shared.clone()),
            pipe(out_read, in_write, shared.clone())
        )
    };
    let chance = lock(&shared.impairment).reset_chance;
    let unlucky = async {
        if chance <= 0.0 {
            return std::future::pending().await;
        }
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.tick().await;
        loop {
            every.tick().await;
            if rand::random::<f64>() < chance {
                return;
            }
        }
    };
    tokio::select! {
        _ = both => {}
        _ = unlucky => {
            shared.random_resets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for sock in [&in_sock, &out_sock].into_iter().flatten() {
                let _ = sock.set_linger(Some(Duration::ZERO));
            }
        }
        _ = resets.changed() => {
            for sock in [&in_sock, &out_sock].into_iter().flatten() {
                let _ = sock.set_linger(Some(Duration::ZERO));
            }
        }
    }
    // The halves are gone with the select; these are the last descriptors.
    drop((in_sock, out_sock));
}

/// One direction: read, hold for half the round trip (plus jitter), pace
/// to the rate, write; nothing moves while partitioned.
async fn pipe(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    shared: Arc<Shared>,
) {
    // Bounded: a slow link pushes back on the sender, as TCP would.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let reading = {
        let shared = shared.clone();
        async move {
            let mut open = shared.open.subscribe();
            let mut buf = vec![0u8; 16 * 1024];
            let mut last_due = Instant::now();
            loop {
                if open.wait_for(|o| *o).await.is_err() {
                    break;
                }
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let impairment = *lock(&shared.impairment);
                let jitter = if impairment.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    impairment.jitter.mul_f64(rand::random::<f64>())
                };
                // Later bytes never overtake earlier ones.
                let due = (Instant::now() + impairment.rtt / 2 + jitter).max(last_due);
                last_due = due;
                if tx.send((due, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    };
    let writing = async move {
        let mut open = shared.open.subscribe();
        // When the link is free again at its rate: each write adds its
        // time, and a wait happens only once it adds up to a timer tick
        // (a sleep per small write would round each up to a millisecond).
        let mut free_at = Instant::now();
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if open.wait_for(|o| *o).await.is_err() {
                return;
            }
            let rate = lock(&shared.impairment).rate;
            if let Some(rate) = rate {
                let now = Instant::now();
                // A timer wakes late by up to a tick: the lateness is owed
                // back (a link idle longer than that starts afresh).
                let takes = Duration::from_secs_f64(bytes.len() as f64 / rate as f64);
                let owed = now.checked_sub(Duration::from_millis(5)).unwrap_or(now);
                free_at = free_at.max(owed) + takes;
                if free_at > now + Duration::from_millis(2) {
                    tokio::time::sleep_until(free_at).await;
                }
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
            shared
                .bytes
                .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream) -> Duration {
        let t = std::time::Instant::now();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        t.elapsed()
    }

    #[test]
    fn a_link_is_written_as_rtt_and_rate() {
        let ms = Duration::from_millis;
        let link = |rtt, rate| Impairment {
            rtt,
            rate,
            ..Impairment::default()
        };
        assert_eq!(
            Impairment::parse("100ms,100mbit"),
            Ok(link(ms(100), Some(12_500_000)))
        );
        assert_eq!(Impairment::parse("50ms"), Ok(link(ms(50), None)));
        assert_eq!(
            Impairment::parse("0.2s,1gbit"),
            Ok(link(ms(200), Some(125_000_000)))
        );
        assert_eq!(
            Impairment::parse("1ms,800kbit"),
            Ok(link(ms(1), Some(100_000)))
        );
        assert!(Impairment::parse("100").unwrap_err().contains("round trip"));
        assert!(Impairment::parse("100ms,fast")
            .unwrap_err()
            .contains("rate"));
        assert!(Impairment::parse("1ms,1mbit,x").is_err());
    }

    #[tokio::test]
    async fn latency_adds_its_round_trip_and_a_partition_holds_bytes_until_it_heals() {
        let rtt = Duration::from_millis(60);
        let link = Impairment {
            rtt,
            ..Default::default()
        };
        let proxy = LinkProxy::start(echo().await, link).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.set_nodelay(true).unwrap();
        // Through the proxy and back: two one-way halves each direction.
        let took = round_trip(&mut s).await;
        assert!(took >= rtt, "{took:?}");

        proxy.partition();
        s.write_all(b"held").await.unwrap();
        let mut b = [0u8; 4];
        let silent = tokio::time::timeout(Duration::from_millis(400), s.read_exact(&mut b)).await;
        assert!(silent.is_err(), "nothing crosses a partition");
        proxy.heal();
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut b))
            .await
            .expect("delivered once healed")
            .unwrap();
        assert_eq!(&b, b"held");
    }

    #[tokio::test]
    async fn the_rate_caps_a_transfer_and_a_reset_is_seen_as_one() {
        let link = Impairment {
            rate: Some(1_000_000),
            ..Default::default()
        };
        let proxy = LinkProxy::start(echo().await, link).await.unwrap();
        let s = TcpStream::connect(proxy.addr()).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let body = vec![7u8; 400_000];
        let t = std::time::Instant::now();
        let writer = tokio::spawn(async move {
            w.write_all(&body).await.unwrap();
            w
        });
        let mut got = vec![0u8; 400_000];
        r.read_exact(&mut got).await.unwrap();
        let took = t.elapsed();
        // 400 kB at 1 MB/s each way (pipelined): at least 0.4 s.
        assert!(took >= Duration::from_millis(380), "{took:?}");
        let _w = writer.await.unwrap();

        proxy.reset();
        let mut b = [0u8; 1];
        let after = tokio::time::timeout(Duration::from_secs(5), r.read(&mut b))
            .await
            .expect("the reset arrives");
        assert!(
            matches!(&after, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{after:?}"
        );
        assert_eq!(proxy.connections(), 1);
    }
}
