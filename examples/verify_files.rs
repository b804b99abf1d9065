//! Verify a captured webhook request from files, with no Pingora and no
//! network: the bare verifier.
//!
//! ```sh
//! cargo run --example verify_files -- examples/data/fynapse.headers \
//!     examples/data/fynapse.json whsec_test_secret 1700000030
//! ```
//!
//! The headers file holds `Name: value` lines as captured; the body file the
//! raw bytes. The last argument is "now" in Unix seconds (default: the
//! clock). Exit 0 when the request verifies, 1 when it does not.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookgate::verify::{self, Fynapse, Scheme, Verdict};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Parses `Name: value` lines into a header map, skipping what is not one.
pub fn parse_headers(text: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// Verifies a captured Fynapse request.
pub fn verify_capture(headers: &str, body: &[u8], secret: &str, now: i64) -> Verdict {
    let key = Fynapse
        .derive_key(secret)
        .map_err(|_| verify::Failure::SignatureMismatch)?;
    let headers = parse_headers(headers);
    verify::verify(
        &Fynapse,
        &verify::SignedRequest::new("POST", &headers, body),
        &[key],
        now,
        Some(Duration::from_secs(300)),
    )
}

#[allow(dead_code)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: verify_files HEADERS_FILE BODY_FILE SECRET [NOW]");
        return ExitCode::from(2);
    }
    let (headers, body) = match (std::fs::read_to_string(&args[0]), std::fs::read(&args[1])) {
        (Ok(h), Ok(b)) => (h, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("cannot read input: {e}");
            return ExitCode::from(2);
        }
    };
    let now = args.get(3).and_then(|n| n.parse().ok()).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    match verify_capture(&headers, &body, &args[2], now) {
        Ok(v) => {
            println!("valid: signed at {:?}", v.timestamp);
            ExitCode::SUCCESS
        }
        Err(f) => {
            println!("rejected: {}", hookgate::Reason::from(f).label());
            ExitCode::FAILURE
        }
    }
}
