//! Reading the whole request body, bounded in size and in time.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::prelude::*;
use pingora::proxy::Session;

/// Why the body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// It grew past the limit (`413`).
    TooLarge,
    /// It did not arrive within the deadline (`408`).
    Timeout,
    /// The sender's connection failed mid-body: nothing to answer.
    Downstream(Box<Error>),
}

/// Reads the body whole: at most `max` bytes, all within `deadline`.
///
/// `expected` is the declared `Content-Length`, already checked against
/// `max`; it sizes the buffer once. A chunked body starts small and grows.
pub(crate) async fn read_whole(
    s: &mut Session,
    max: usize,
    expected: Option<usize>,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    // A body that arrives as one chunk (the common case with
    // Content-Length) is kept as is; only a second chunk starts a copy.
    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    let mut len = 0usize;
    let read = async {
        while let Some(chunk) = s
            .read_request_body()
            .await
            .map_err(|e| BodyError::Downstream(e.into_down()))?
        {
            len += chunk.len();
            if len > max {
                return Err(BodyError::TooLarge);
            }
            match (&mut buf, first.take()) {
                (Some(b), _) => b.extend_from_slice(&chunk),
                (None, None) => first = Some(chunk),
                (None, Some(f)) => {
                    let mut b =
                        BytesMut::with_capacity(expected.unwrap_or(64 * 1024).clamp(len, max));
                    b.extend_from_slice(&f);
                    b.extend_from_slice(&chunk);
                    buf = Some(b);
                }
            }
        }
        Ok(())
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(())) => Ok(buf.map(BytesMut::freeze).or(first).unwrap_or_default()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Timeout),
    }
}
