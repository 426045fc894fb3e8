//! One call's answer: the route's policy checked, the backend called, the
//! response written (whole or as read-ahead batches).

use crate::wire::v1::v1_text;
use futures::AsyncWrite;
use libp2p::PeerId;
use std::time::{Duration, Instant};

use super::read_ahead::{AfterBatch, ReadAhead, MAX_COALESCED_BYTES};
use super::{micros, Server};
use crate::logs::{Untrusted, UntrustedDetail};
use crate::protocol::codec::write::{Refusal, Responder};
use crate::protocol::events::ServeOutcome;
use crate::upstream::UpstreamError;
use crate::wire::{self, frame::Code};

impl Server {
    /// Checks the route's policy, forwards, and answers.
    pub(super) async fn respond<W: AsyncWrite + Unpin>(
        &self,
        out: &mut Responder<W>,
        peer: PeerId,
        req: &wire::ApiRequest,
        id: crate::protocol::events::CallId,
    ) -> ServeOutcome {
        let name = req.route.as_str();
        let method = req.method_or_default();
        let max_headers = self.inner.limits.max_request_headers;
        let checked = match self.inner.routes.get(name) {
            _ if req.headers.len() > max_headers => Err(Refusal::new(
                Code::BadRequest,
                name,
                v1_text::exceeds_limit(
                    format_args!("a request of {} headers", req.headers.len()),
                    max_headers,
                ),
            )),
            None => Err(Refusal::new(
                Code::RouteNotFound,
                name,
                format!("no route named '{}'", Untrusted(name)),
            )),
            Some(route) => match route.check(&peer, req) {
                Ok(()) => Ok(route),
                Err(why) => Err(policy_refusal(name, method, &peer, why)),
            },
        };
        let route = match checked {
            Ok(route) => route,
            Err(refusal) => return self.refused(out, refusal).await,
        };
        let config = self.inner.upstream.config();
        // The caller's deadline (2.0.0) can only shorten ours.
        let cap = |d: Duration| match req.timeout_ms {
            0 => d,
            ms => d.min(Duration::from_millis(u64::from(ms))),
        };
        if !req.is_stream() {
            let timeout = cap(route.policy.timeout.unwrap_or(config.unary_timeout));
            let deadline = tokio::time::Instant::now() + timeout;
            let asked = Instant::now();
            let result = match self.inner.upstream.send(&route, req, timeout).await {
                Ok(resp) => {
                    out.timing.backend_head_us = micros(asked.elapsed());
                    let headed = Instant::now();
                    let status = resp.status;
                    let headers = crate::upstream::header_map(&resp.headers);
                    let body = resp.collect(deadline).await;
                    out.timing.backend_body_us = micros(headed.elapsed());
                    body.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            match result {
                Ok((status, headers, body)) => {
                    self.inner.taps.offer(id, name, std::slice::from_ref(&body));
                    match out.unary(status, headers, body).await {
                        Ok(()) => ServeOutcome::Ok { status },
                        Err(error) => ServeOutcome::CallerGone { error },
                    }
                }
                Err(e) => self.refused(out, upstream_refusal(name, &e)).await,
            }
        } else {
            let idle = cap(route.policy.timeout.unwrap_or(config.stream_idle_timeout));
            let asked = Instant::now();
            let resp = match self.inner.upstream.send(&route, req, idle).await {
                Ok(resp) => resp,
                Err(e) => return self.refused(out, upstream_refusal(name, &e)).await,
            };
            out.timing.backend_head_us = micros(asked.elapsed());
            let headed = Instant::now();
            let status = resp.status;
            if let Err(error) = out
                .head(status, crate::upstream::header_map(&resp.headers))
                .await
            {
                return ServeOutcome::CallerGone { error };
            }
            let mut chunks = ReadAhead::spawn(resp.chunks(), &self.inner.read_ahead);
            let mut batch = Vec::new();
            loop {
                let after = chunks.next_batch(&mut batch, MAX_COALESCED_BYTES).await;
                if !batch.is_empty() {
                    self.inner.taps.offer(id, name, &batch);
                    if let Err(error) = out.data(&batch).await {
                        return ServeOutcome::CallerGone { error };
                    }
                }
                match after {
                    AfterBatch::More => {}
                    AfterBatch::End => break,
                    AfterBatch::Failed(e) => {
                        return self.refused(out, upstream_refusal(name, &e)).await
                    }
                }
            }
            out.timing.backend_body_us = micros(headed.elapsed());
            match out.end().await {
                Ok(()) => ServeOutcome::Ok { status },
                Err(error) => ServeOutcome::CallerGone { error },
            }
        }
    }

    pub(super) async fn refused<W: AsyncWrite + Unpin>(
        &self,
        out: &mut Responder<W>,
        refusal: Refusal,
    ) -> ServeOutcome {
        if let Some(suppressed) = self.inner.log_throttle.allow("refused") {
            tracing::warn!(route = %Untrusted(&refusal.route), code = %refusal.code, suppressed, "{}", UntrustedDetail(refusal.detail()));
        }
        match out.refuse(&refusal).await {
            Ok(()) => refusal.outcome(),
            Err(error) => ServeOutcome::CallerGone { error },
        }
    }
}

/// A route policy's refusal as the caller sees it: a code and a text that
/// says what to change.
fn policy_refusal(name: &str, method: &str, peer: &PeerId, why: crate::routes::Refusal) -> Refusal {
    use crate::routes::Refusal as Why;
    match why {
        Why::Peer => Refusal::new(
            Code::Forbidden,
            name,
            format!("peer {peer} may not call route '{}'", Untrusted(name)),
        ),
        Why::Method { allowed } => Refusal::new(
            Code::MethodNotAllowed,
            name,
            v1_text::method_not_allowed(Untrusted(method), name, &allowed.join(", ")),
        ),
        Why::NotStreaming => Refusal::new(
            Code::StreamNotSupported,
            name,
            format!("route '{}' does not stream", Untrusted(name)),
        ),
        Why::BodyTooLarge { bytes, limit } => Refusal::new(
            Code::TooLarge,
            name,
            v1_text::exceeds_limit(
                format_args!("request body of {bytes} bytes"),
                format_args!("{limit} bytes of route '{name}'"),
            ),
        ),
    }
}

fn upstream_refusal(route: &str, e: &UpstreamError) -> Refusal {
    let code = match e {
        UpstreamError::BadMethod(_) => Code::MethodNotAllowed,
        UpstreamError::BadHeader(_) => Code::BadRequest,
        UpstreamError::BadUrl { .. } => Code::Internal,
        UpstreamError::Unavailable { .. } => Code::UpstreamUnavailable,
        UpstreamError::Timeout { .. } => Code::UpstreamTimeout,
        UpstreamError::Failed { .. } => Code::UpstreamFailed,
        UpstreamError::TooLarge { .. } => Code::TooLarge,
    };
    Refusal {
        detail: Some(e.to_string()),
        ..Refusal::new(code, route, e.public_message())
    }
}
