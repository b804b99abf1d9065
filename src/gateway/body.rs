//! Reading the whole request body, bounded in size, in time and in the
//! bytes all requests hold together (`server.max_buffered`).

use std::time::Duration;

use bytes::Bytes;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::limits::Lease;

/// The first buffer of a body that arrives in several pieces; it doubles
/// from there, never past the declared length.
const START: usize = 64 * 1024;

/// Why the body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// It grew past the limit (`413`).
    TooLarge,
    /// It did not arrive within the deadline (`408`).
    Timeout,
    /// Its buffer would take the bytes held by all requests past
    /// `max_buffered` (`503`).
    Overloaded,
    /// The chunked framing is malformed (`400`).
    BadFraming,
    /// The sender's connection failed mid-body: nothing to answer.
    Downstream(Box<Error>),
}

/// Pingora's errors for a malformed chunked body (`pingora-core`'s
/// `protocols/http/v1/body.rs`: `INVALID_CHUNK`, `INVALID_TRAILER_END`).
fn is_bad_framing(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::Custom("InvalidChunk") | ErrorType::Custom("InvalidTrailerEnd")
    )
}

/// Makes room for `len` bytes in `b`: its capacity doubles from [`START`],
/// never past `cap` (the declared length, or `max_body`) unless `len` needs
/// it, each growth leased first.
fn grow(b: &mut Vec<u8>, len: usize, cap: usize, lease: &mut Lease) -> Result<(), BodyError> {
    if b.capacity() >= len {
        return Ok(());
    }
    let target = (b.capacity() * 2).max(START).min(cap).max(len);
    if !lease.grow_to(target) {
        return Err(BodyError::Overloaded);
    }
    b.reserve_exact(target - b.len());
    Ok(())
}

/// Reads the body whole: at most `max` bytes, all within `deadline`, with
/// its buffer leased from `lease` as it grows.
///
/// `expected` is the declared `Content-Length`, already checked against
/// `max` (and leased whole by the caller); it caps the buffer's growth but
/// is never allocated up front.
pub(crate) async fn read_whole(
    s: &mut Session,
    max: usize,
    expected: Option<usize>,
    deadline: Duration,
    lease: &mut Lease,
) -> Result<Bytes, BodyError> {
    // A body that arrives as one chunk (the common case with
    // Content-Length) is kept as is; only a second chunk starts a copy.
    let mut first: Option<Bytes> = None;
    let mut buf: Option<Vec<u8>> = None;
    let mut len = 0usize;
    let cap = expected.unwrap_or(max);
    let read = async {
        while let Some(chunk) = s.read_request_body().await.map_err(|e| {
            if is_bad_framing(&e) {
                BodyError::BadFraming
            } else {
                BodyError::Downstream(e.into_down())
            }
        })? {
            len += chunk.len();
            if len > max {
                return Err(BodyError::TooLarge);
            }
            let b = match (&mut buf, first.take()) {
                (Some(b), _) => b,
                (None, None) => {
                    if !lease.grow_to(len) {
                        return Err(BodyError::Overloaded);
                    }
                    first = Some(chunk);
                    continue;
                }
                (None, Some(f)) => {
                    let b = buf.insert(Vec::new());
                    grow(b, len, cap, lease)?;
                    b.extend_from_slice(&f);
                    b
                }
            };
            grow(b, len, cap, lease)?;
            b.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(())) => Ok(buf.map(Bytes::from).or(first).unwrap_or_default()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Timeout),
    }
}
