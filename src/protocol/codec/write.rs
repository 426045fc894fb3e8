//! The response codec of the serving side: answers in the caller's
//! protocol, 1.0.0 raw bytes and in-band texts or 2.0.0 frames, and the
//! refusals both protocols can give.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{AsyncWrite, AsyncWriteExt};

use crate::protocol::events::ServeOutcome;
use crate::wire::frame::{
    encode_data, encode_data_header, encode_frame, ApiResponseFrame, Code, ServerTiming,
    MAX_DATA_FRAME_BYTES,
};
use crate::wire::Failure;

/// Chunks at least this large are written as they are; smaller ones are
/// copied together first, so many tokens make one yamux frame.
const GATHER_COPY_BELOW: usize = 4096;

/// Why a call was not forwarded, as both protocols say it.
#[derive(Debug)]
pub(in crate::protocol) struct Refusal {
    pub(in crate::protocol) code: Code,
    /// What the caller is told.
    pub(in crate::protocol) message: String,
    pub(in crate::protocol) route: String,
    /// The full story for our own log and events (may name the backend).
    pub(in crate::protocol) detail: Option<String>,
}

impl Refusal {
    pub(in crate::protocol) fn new(code: Code, route: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            route: route.to_string(),
            detail: None,
        }
    }

    /// What our own log and console show.
    pub(in crate::protocol) fn detail(&self) -> &str {
        self.detail.as_deref().unwrap_or(&self.message)
    }

    /// The 1.0.0 in-band text, from the failure table by code.
    pub(in crate::protocol) fn v1_text(&self) -> String {
        Failure::of_code(self.code).v1_text(&self.route, &self.message)
    }

    pub(in crate::protocol) fn outcome(&self) -> ServeOutcome {
        let failure = Failure::of_code(self.code);
        match failure {
            Failure::RouteNotFound => ServeOutcome::RouteNotFound,
            Failure::StreamNotSupported => ServeOutcome::StreamNotSupported,
            _ if failure.is_backend() => ServeOutcome::Failed {
                error: format!("{}: {}", self.code, self.detail()),
            },
            _ => ServeOutcome::Refused {
                reason: format!("{}: {}", self.code, self.detail()),
            },
        }
    }
}

/// Writes a response in the caller's protocol.
pub(in crate::protocol) struct Responder<W> {
    pub(in crate::protocol) io: W,
    pub(in crate::protocol) v2: bool,
    pub(in crate::protocol) write_timeout: Duration,
    pub(in crate::protocol) body_bytes: u64,
    /// Sent in the 2.0.0 head and end.
    pub(in crate::protocol) timing: ServerTiming,
    /// Counts the error answers, when the node keeps metrics.
    pub(in crate::protocol) metrics: Option<std::sync::Arc<crate::protocol::metrics::NodeMetrics>>,
}

impl<W: AsyncWrite + Unpin> Responder<W> {
    pub(in crate::protocol) async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let io = &mut self.io;
        tokio::time::timeout(self.write_timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| "caller stopped reading".to_string())?
        .map_err(|e| e.to_string())
    }

    pub(in crate::protocol) async fn refuse(&mut self, refusal: &Refusal) -> Result<(), String> {
        if let Some(m) = &self.metrics {
            m.refused(refusal.code);
        }
        if self.v2 {
            let mut buf = BytesMut::new();
            encode_frame(
                &ApiResponseFrame::error(refusal.code, &refusal.message),
                &mut buf,
            );
            self.write(&buf).await
        } else {
            self.write(refusal.v1_text().as_bytes()).await
        }
    }

    /// A whole response in one write (a Python caller reads it with one read).
    pub(in crate::protocol) async fn unary(
        &mut self,
        status: u16,
        headers: HashMap<String, String>,
        body: Bytes,
    ) -> Result<(), String> {
        self.body_bytes = body.len() as u64;
        if self.v2 {
            let mut buf = BytesMut::with_capacity(body.len() + 256);
            let timing = Some(self.timing);
            encode_frame(
                &ApiResponseFrame::head_timed(status, headers, timing),
                &mut buf,
            );
            encode_data(&body, &mut buf);
            encode_frame(
                &ApiResponseFrame::end_timed(body.len() as u64, timing),
                &mut buf,
            );
            self.write(&buf).await
        } else {
            self.write(&body).await
        }
    }

    pub(in crate::protocol) async fn head(
        &mut self,
        status: u16,
        headers: HashMap<String, String>,
    ) -> Result<(), String> {
        if self.v2 {
            let mut buf = BytesMut::new();
            encode_frame(
                &ApiResponseFrame::head_timed(status, headers, Some(self.timing)),
                &mut buf,
            );
            self.write(&buf).await?;
        }
        Ok(())
    }

    /// Sends chunks that were ready together: in 2.0.0 as few data frames
    /// as the frame limit allows. Small chunks are copied together, large
    /// ones written without a copy.
    pub(in crate::protocol) async fn data(&mut self, chunks: &[Bytes]) -> Result<(), String> {
        // No piece larger than a data frame may carry.
        let pieces = chunks.iter().flat_map(|c| {
            (0..c.len())
                .step_by(MAX_DATA_FRAME_BYTES)
                .map(move |at| c.slice(at..(at + MAX_DATA_FRAME_BYTES).min(c.len())))
        });
        let mut frames: Vec<(usize, Vec<Bytes>)> = Vec::new();
        for piece in pieces {
            match frames.last_mut() {
                Some((len, parts)) if *len + piece.len() <= MAX_DATA_FRAME_BYTES => {
                    *len += piece.len();
                    parts.push(piece);
                }
                _ => frames.push((piece.len(), vec![piece])),
            }
        }
        let v2 = self.v2;
        let io = &mut self.io;
        let mut sent = 0u64;
        let written = tokio::time::timeout(self.write_timeout, async {
            let mut staged = BytesMut::new();
            for (len, parts) in &frames {
                if v2 {
                    encode_data_header(*len, &mut staged);
                }
                for part in parts {
                    if part.len() < GATHER_COPY_BELOW {
                        staged.extend_from_slice(part);
                        continue;
                    }
                    if !staged.is_empty() {
                        io.write_all(&staged).await?;
                        staged.clear();
                    }
                    io.write_all(part).await?;
                }
                sent += *len as u64;
            }
            if !staged.is_empty() {
                io.write_all(&staged).await?;
            }
            io.flush().await
        })
        .await;
        self.body_bytes += sent;
        written
            .map_err(|_| "caller stopped reading".to_string())?
            .map_err(|e| e.to_string())
    }

    pub(in crate::protocol) async fn end(&mut self) -> Result<(), String> {
        if self.v2 {
            let mut buf = BytesMut::new();
            encode_frame(
                &ApiResponseFrame::end_timed(self.body_bytes, Some(self.timing)),
                &mut buf,
            );
            self.write(&buf).await?;
        }
        Ok(())
    }
}
