//! Yamux as a libp2p muxer, with the frame split size exposed.
//!
//! libp2p-yamux 0.48 splits every write into frames of at most 16 KiB and
//! does not let us change that. A py-libp2p peer reads a unary response (and
//! a server reads a request) with a single read, so it only sees the first
//! frame: larger frames are what let Python peers send and receive large
//! messages whole. This mirrors libp2p-yamux's `Muxer` (MIT, Parity
//! Technologies) over the same `yamux` 0.14 crate, adding `split_send_size`.
//!
//! Writes are corked: yamux 0.14 flushes the connection after every frame,
//! which costs a Noise message and a syscall per frame. Here a flush only
//! marks the connection dirty; the muxer flushes once at the end of each
//! pass, when yamux has queued every frame that was ready. Nothing waits
//! for more data: the flush happens in the same poll.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::{future, ready, AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};

/// Default largest yamux data frame we send. Large enough that a py-libp2p
/// peer's single read sees a whole message up to the flow-control window.
pub const DEFAULT_YAMUX_SPLIT_SEND_BYTES: usize = 1024 * 1024;
/// Default most concurrent streams on one connection.
pub const DEFAULT_YAMUX_MAX_STREAMS: usize = 1024;
/// Inbound streams buffered while the swarm is busy; more are reset.
const MAX_BUFFERED_INBOUND_STREAMS: usize = 256;

/// Upgrade that turns a secured connection into a yamux connection.
#[derive(Clone, Debug)]
pub struct YamuxUpgrade(yamux::Config);

impl YamuxUpgrade {
    pub fn new(split_send_bytes: usize, max_streams: usize) -> Self {
        let mut config = yamux::Config::default();
        config.set_split_send_size(split_send_bytes.max(1024));
        config.set_max_num_streams(max_streams.max(1));
        Self(config)
    }
}

impl UpgradeInfo for YamuxUpgrade {
    type Info = &'static str;
    type InfoIter = std::iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once("/yamux/1.0.0")
    }
}

impl<C> InboundConnectionUpgrade<C> for YamuxUpgrade
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, io: C, _: Self::Info) -> Self::Future {
        future::ready(Ok(Muxer::new(io, self.0, yamux::Mode::Server)))
    }
}

impl<C> OutboundConnectionUpgrade<C> for YamuxUpgrade
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, io: C, _: Self::Info) -> Self::Future {
        future::ready(Ok(Muxer::new(io, self.0, yamux::Mode::Client)))
    }
}

/// Bytes were written since the last real flush.
const DIRTY: u8 = 1;
/// The muxer asks for a real flush at the next `poll_flush`.
const FLUSH_NOW: u8 = 2;
/// Passes of yamux's loop one poll may make before yielding.
const MAX_FLUSH_PASSES: usize = 8;

/// The secured connection under yamux, with flushes held back until the
/// muxer asks (see the module docs). Only the connection's task touches
/// it and its state, so relaxed atomics suffice.
#[derive(Debug)]
struct Corked<C> {
    io: C,
    state: Arc<AtomicU8>,
}

impl<C: AsyncRead + Unpin> AsyncRead for Corked<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Corked<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
        if written > 0 {
            self.state.fetch_or(DIRTY, Ordering::Relaxed);
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let state = self.state.load(Ordering::Relaxed);
        if state & DIRTY == 0 || state & FLUSH_NOW == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        self.state.store(0, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        self.state.store(0, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// A yamux connection driven by the swarm.
#[derive(Debug)]
pub struct Muxer<C> {
    connection: yamux::Connection<Corked<C>>,
    cork: Arc<AtomicU8>,
    inbound_stream_buffer: VecDeque<Stream>,
    inbound_stream_waker: Option<Waker>,
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    fn new(io: C, config: yamux::Config, mode: yamux::Mode) -> Self {
        let cork = Arc::new(AtomicU8::new(0));
        let io = Corked {
            io,
            state: cork.clone(),
        };
        Self {
            connection: yamux::Connection::new(io, config, mode),
            cork,
            inbound_stream_buffer: VecDeque::new(),
            inbound_stream_waker: None,
        }
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<Stream, Error>> {
        for _ in 0..MAX_FLUSH_PASSES {
            if let Poll::Ready(next) = self.connection.poll_next_inbound(cx) {
                let stream = next
                    .ok_or(Error(yamux::ConnectionError::Closed))?
                    .map_err(Error)?;
                return Poll::Ready(Ok(Stream(stream)));
            }
            // yamux has queued all it could. Flush in one more pass of its
            // loop, which flushes first and then finds nothing else to do
            // (or more frames, which the next round flushes).
            match self.cork.load(Ordering::Relaxed) {
                0 => return Poll::Pending,
                // Asked already and still dirty: the socket is full and
                // will wake us.
                s if s & FLUSH_NOW != 0 => return Poll::Pending,
                _ => {
                    self.cork.fetch_or(FLUSH_NOW, Ordering::Relaxed);
                }
            }
        }
        // Frames keep coming: let other tasks run, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    type Substream = Stream;
    type Error = Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        if let Some(stream) = self.inbound_stream_buffer.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        if let Poll::Ready(res) = self.poll_inner(cx) {
            return Poll::Ready(res);
        }
        self.inbound_stream_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let stream = ready!(self.connection.poll_new_outbound(cx)).map_err(Error)?;
        Poll::Ready(Ok(Stream(stream)))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.connection.poll_close(cx).map_err(Error)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let inbound = ready!(this.poll_inner(cx))?;
        if this.inbound_stream_buffer.len() >= MAX_BUFFERED_INBOUND_STREAMS {
            tracing::warn!(stream = %inbound.0, "resetting inbound stream: muxer buffer is full");
            drop(inbound);
        } else {
            this.inbound_stream_buffer.push_back(inbound);
            if let Some(waker) = this.inbound_stream_waker.take() {
                waker.wake();
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One yamux stream.
#[derive(Debug)]
pub struct Stream(yamux::Stream);

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// A yamux connection error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(yamux::ConnectionError);

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err.0 {
            yamux::ConnectionError::Io(e) => e,
            e => io::Error::other(e),
        }
    }
}
