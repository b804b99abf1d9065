//! The request's transfer coding, checked before anything else.
//!
//! Pingora frames a request by its *last* transfer coding: it refuses a
//! final coding other than `chunked` (its own `400`), but takes
//! `Transfer-Encoding: gzip, chunked` as a chunked body and leaves the
//! `gzip` to the application. hookgate verifies and forwards the bytes it
//! reads, never decodes them, and forwards with `Content-Length`: a coding
//! under `chunked` would be dropped on the way. So the only transfer coding
//! it takes is one `chunked`; anything else is `501`, nothing forwarded.

use pingora::http::RequestHeader;

use crate::reason::Reason;

/// `Ok` when the request has no `Transfer-Encoding`, or exactly one
/// `chunked` (over every `Transfer-Encoding` line, case-insensitive).
pub(crate) fn transfer_coding(req: &RequestHeader) -> Result<(), Reason> {
    let mut codings = 0usize;
    for value in req.headers.get_all(http::header::TRANSFER_ENCODING) {
        for token in value.as_bytes().split(|b| *b == b',') {
            codings += 1;
            if codings > 1 || !token.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(Reason::UnsupportedTransferCoding);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(te: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/", None).unwrap();
        for v in te {
            r.append_header("transfer-encoding", *v).unwrap();
        }
        r
    }

    #[test]
    fn only_one_chunked_passes() {
        for ok in [&[][..], &["chunked"], &["Chunked"], &[" chunked "]] {
            assert_eq!(transfer_coding(&req(ok)), Ok(()), "{ok:?}");
        }
        for bad in [
            &["gzip, chunked"][..],
            &["gzip", "chunked"],
            &["chunked, chunked"],
            &["chunked", "chunked"],
            &["deflate,chunked"],
            &["identity, chunked"],
            &["chunked;q=1"],
            &[", chunked"],
        ] {
            assert_eq!(
                transfer_coding(&req(bad)),
                Err(Reason::UnsupportedTransferCoding),
                "{bad:?}"
            );
        }
    }
}
