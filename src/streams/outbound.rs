//! Outbound streams that are never touched after their negotiation failed.
//!
//! Lazy multistream-select hands a stream over before the peer confirmed
//! the protocol; the confirmation is read with the first read. When that
//! read fails (the peer says `na`, or the connection closes while the
//! answer is outstanding, as it does when a one-shot command exits),
//! multistream-select leaves the stream in an invalid state and *panics*
//! on any later write, flush or close ("Negotiated: Invalid state"). Every
//! outbound stream of ours goes through [`OutboundStream`], which remembers
//! a failed read and answers later writes, flushes and closes with an error
//! without reaching the stream underneath.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};

/// A stream that refuses writes, flushes and closes once a read failed.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    read_failed: bool,
}

/// An outbound libp2p stream of ours.
pub type OutboundStream = Guarded<libp2p::Stream>;

impl<S> Guarded<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            read_failed: false,
        }
    }

    /// Whether a read failed (the stream is no longer written to).
    pub fn read_failed(&self) -> bool {
        self.read_failed
    }

    fn refused() -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the stream failed while reading (negotiation or connection); not written to again",
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.read_failed {
            return Poll::Ready(Err(Self::refused()));
        }
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(_)) = &polled {
            self.read_failed = true;
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.read_failed {
            return Poll::Ready(Err(Self::refused()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read_failed {
            return Poll::Ready(Err(Self::refused()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read_failed {
            return Poll::Ready(Err(Self::refused()));
        }
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};
    use multistream_select::{dialer_select_proto, Version};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    /// A lazily negotiated stream whose peer answers `na`: reading fails,
    /// and closing the bare stream afterwards panics inside
    /// multistream-select; closing it through the guard is an error.
    async fn refused_negotiation(
    ) -> multistream_select::Negotiated<tokio_util::compat::Compat<tokio::io::DuplexStream>> {
        let (ours, theirs) = tokio::io::duplex(4096);
        // The peer: reads our header and proposal, says it has no such protocol.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let mut theirs = theirs;
            let mut buf = [0u8; 256];
            let _ = theirs.read(&mut buf).await;
            let header = b"/multistream/1.0.0\n";
            let na = b"na\n";
            let mut answer = vec![header.len() as u8];
            answer.extend_from_slice(header);
            answer.push(na.len() as u8);
            answer.extend_from_slice(na);
            let _ = theirs.write_all(&answer).await;
            // Keep our end open until the test is done with its stream.
            let _ = theirs.read(&mut buf).await;
        });
        let (_, stream) = dialer_select_proto(ours.compat(), ["/x/1"], Version::V1Lazy)
            .await
            .expect("lazy negotiation hands the stream over at once");
        stream
    }

    #[tokio::test]
    async fn closing_after_a_refused_negotiation_panics_without_the_guard() {
        let mut bare = refused_negotiation().await;
        let mut buf = [0u8; 16];
        assert!(bare.read(&mut buf).await.is_err(), "the peer said na");
        let closed = tokio::spawn(async move {
            let _ = bare.close().await;
        })
        .await;
        assert!(
            closed.is_err_and(|e| e.is_panic()),
            "multistream-select panics on close after a failed negotiation; \
             if it no longer does, the guard may be dropped"
        );
    }

    #[tokio::test]
    async fn the_guard_answers_writes_and_closes_after_a_failed_read_with_an_error() {
        let mut guarded = Guarded::new(refused_negotiation().await);
        let mut buf = [0u8; 16];
        assert!(guarded.read(&mut buf).await.is_err());
        assert!(guarded.read_failed());
        assert!(guarded.write_all(b"more").await.is_err());
        assert!(guarded.flush().await.is_err());
        assert!(guarded.close().await.is_err());
        assert!(guarded.read(&mut buf).await.is_err());
    }
}
