//! The `ProxyHttp` that the `hookgate` binary runs: every phase delegates to
//! [`Gateway`]; this file only adapts Pingora's hooks.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;

use super::rejection::OwnAnswer;
use super::{Gateway, Outcome, RequestCtx};

/// hookgate as a Pingora proxy service.
pub struct GatewayProxy {
    gateway: Arc<Gateway>,
}

impl GatewayProxy {
    /// Wraps a gateway.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        GatewayProxy { gateway }
    }
}

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        self.gateway.new_ctx()
    }

    async fn request_filter(&self, s: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.gateway.handle(s, ctx).await
    }

    async fn upstream_peer(
        &self,
        _s: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // `request_filter` always answers; Pingora's own forwarding is
        // never used (see `forward`).
        Error::e_explain(
            ErrorType::InternalError,
            "hookgate forwards in request_filter",
        )
    }

    async fn fail_to_proxy(&self, s: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        // Only sender-side failures reach here (a read error mid-body, a
        // write error): there is usually nobody left to answer. Try a plain
        // JSON answer for anything else and close.
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            _ if e.esource() == &ErrorSource::Downstream => 0,
            _ => 500,
        };
        if code > 0 {
            let answer = if code >= 500 {
                OwnAnswer::plain(code, br#"{"error":"internal_error"}"#)
            } else {
                OwnAnswer::plain(code, br#"{"error":"bad_request"}"#)
            };
            let _ = answer.write(s, ctx.request_id()).await;
        }
        ctx.outcome.get_or_insert(Outcome::Aborted);
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _s: &Session, _ctx: &RequestCtx, _e: &Error) -> bool {
        // The `logging` line below says it once.
        true
    }

    async fn logging(&self, s: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.gateway.logging(s, e, ctx);
    }
}
