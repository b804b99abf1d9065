//! `hookgate send`: sign and POST deliveries, printing what came back.

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use hookgate::verify::{self, Delivery};

use super::sign::{Signer, SignerArgs};

/// What one POST got back.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Status code.
    pub status: u16,
    /// Headers that matter to a webhook sender.
    pub headers: Vec<(String, String)>,
    /// Body (hookgate's answers are small JSON).
    pub body: Vec<u8>,
    /// Round-trip time.
    pub elapsed: Duration,
}

impl Sent {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `error` or `status` of a JSON answer.
    pub fn reason(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        v.get("error")
            .or_else(|| v.get("status"))
            .and_then(|x| x.as_str())
            .unwrap_or("-")
            .to_string()
    }
}

/// An HTTP/1.1 client on Pingora's connector.
pub struct Client {
    connector: Connector,
    peer: HttpPeer,
    authority: String,
    path: String,
}

impl Client {
    /// A client for `url` (`http://` or `https://`, verified against the
    /// system's roots).
    pub fn new(url: &str) -> Result<Client, String> {
        let u = url::Url::parse(url).map_err(|e| format!("bad URL `{url}`: {e}"))?;
        let tls = match u.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "`{other}://` URLs are not supported: http or https"
                ))
            }
        };
        let host = u.host_str().ok_or("the URL has no host")?.to_string();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = u.port_or_known_default().unwrap_or(80);
        let addr = (bare, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to nothing"))?;
        let sni = if tls { bare.to_string() } else { String::new() };
        let mut peer = HttpPeer::new(addr, tls, sni);
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        peer.options.read_timeout = Some(Duration::from_secs(60));
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        Ok(Client {
            connector: Connector::new(None),
            peer,
            authority: format!("{host}:{port}"),
            path,
        })
    }

    /// POSTs `body` with `headers`.
    pub async fn post(&self, headers: &[(String, String)], body: Bytes) -> Result<Sent, String> {
        let started = Instant::now();
        let err = |e: Box<pingora::Error>| e.to_string();
        let mut req = RequestHeader::build("POST", self.path.as_bytes(), None).map_err(err)?;
        req.insert_header("host", &self.authority).map_err(err)?;
        req.insert_header("content-length", body.len().to_string())
            .map_err(err)?;
        req.insert_header(
            "user-agent",
            concat!("hookgate-send/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(err)?;
        for (k, v) in headers {
            req.insert_header(k.clone(), v.as_str()).map_err(err)?;
        }
        let (mut s, _) = self
            .connector
            .get_http_session(&self.peer)
            .await
            .map_err(err)?;
        s.set_read_timeout(self.peer.options.read_timeout);
        s.write_request_header(Box::new(req)).await.map_err(err)?;
        s.write_request_body(body, true).await.map_err(err)?;
        s.finish_request_body().await.map_err(err)?;
        s.read_response_header().await.map_err(err)?;
        let resp = s.response_header().ok_or("no response")?.clone();
        let mut out = Vec::new();
        while let Some(chunk) = s.read_response_body().await.map_err(err)? {
            out.extend_from_slice(&chunk);
        }
        self.connector
            .release_http_session(s, &self.peer, Some(Duration::from_secs(5)))
            .await;
        let keep = [
            "x-request-id",
            "hookgate-duplicate",
            "retry-after",
            "content-type",
        ];
        let headers = resp
            .headers
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        Ok(Sent {
            status: resp.status.as_u16(),
            headers,
            body: out,
            elapsed: started.elapsed(),
        })
    }
}

/// The delivery headers: content type, signature, idempotency key.
pub fn delivery_headers(
    signer: &Signer,
    body: &[u8],
    timestamp: i64,
    key: &str,
) -> Vec<(String, String)> {
    let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
    h.extend(signer.headers(body, timestamp, key));
    match signer.id_header() {
        // The scheme carries its own id (signed or not): send the key there.
        Some(id) if !h.iter().any(|(k, _)| k.eq_ignore_ascii_case(id)) => {
            h.push((id.to_string(), key.to_string()))
        }
        Some(_) => {}
        None => h.push(("Idempotency-Key".to_string(), key.to_string())),
    }
    h
}

/// What an answer means, in words: `forwarded`, `duplicate (already
/// delivered)`, `rejected: missing_signature`, `failed: upstream_timeout`.
pub fn outcome(s: &Sent) -> String {
    let reason = s.reason();
    match s.status {
        200..=299 if s.header("hookgate-duplicate").is_some() => {
            "duplicate (already delivered)".into()
        }
        200..=299 if reason == "ignored" => "ignored (event not forwarded)".into(),
        200..=299 => "forwarded".into(),
        400..=499 if reason == "-" => "rejected by the receiver".into(),
        400..=499 => format!("rejected: {reason}"),
        _ if reason == "-" => "failed at the receiver".into(),
        _ => format!("failed: {reason}"),
    }
}

/// One line for a sent delivery: `#n status time outcome id`.
pub fn describe(n: usize, s: &Sent) -> String {
    format!(
        "#{n} {} {:>8.1}ms {:<32} x-request-id={}",
        s.status,
        s.elapsed.as_secs_f64() * 1000.0,
        outcome(s),
        s.header("x-request-id").unwrap_or("-"),
    )
}

/// How `send` ends: 0 when every answer was `2xx`, 1 when one was
/// rejected (`4xx`), 2 when the gateway could not be reached or answered
/// `5xx`.
pub fn exit_code(statuses: &[Option<u16>]) -> u8 {
    let unreachable_or_5xx = statuses
        .iter()
        .any(|s| s.is_none_or(|s| !(200..500).contains(&s)));
    if unreachable_or_5xx {
        2
    } else if statuses.iter().flatten().any(|s| *s >= 300) {
        1
    } else {
        0
    }
}

/// `--header NAME:VALUE` options as header pairs.
fn extra_headers(given: &[String]) -> Result<Vec<(String, String)>, String> {
    given
        .iter()
        .map(|h| match h.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_string(), value.trim().to_string()))
            }
            _ => Err(format!("--header `{h}`: give NAME:VALUE")),
        })
        .collect()
}

/// One delivery as `send` posts it: headers, body and the URL to post to.
pub struct Prepared {
    /// Content type, signature, idempotency key.
    pub headers: Vec<(String, String)>,
    /// The body (changed when the scheme signs inside it).
    pub body: Bytes,
    /// `--url`, plus what the scheme added to the signed URL's query
    /// (Twilio's `bodySHA256`).
    pub target: String,
}

/// Signs one delivery for `send`: `public` is the URL the sender signs,
/// `url` where it is posted.
pub fn prepare(
    signer: &Signer,
    body: &[u8],
    timestamp: i64,
    key: &str,
    url: &str,
    public: &str,
) -> Result<Prepared, String> {
    let signed = signer.sign(&Delivery {
        method: "POST",
        url: Some(public),
        body,
        timestamp,
        id: key,
    })?;
    let json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    let content_type = if json || body.is_empty() {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let mut h = vec![("Content-Type".to_string(), content_type.to_string())];
    h.extend(signed.headers);
    match signer.id_header() {
        Some(id) if !h.iter().any(|(k, _)| k.eq_ignore_ascii_case(id)) => {
            h.push((id.to_string(), key.to_string()))
        }
        Some(_) => {}
        None => h.push(("Idempotency-Key".to_string(), key.to_string())),
    }
    let target = match signed.url.as_deref().and_then(|u| u.strip_prefix(public)) {
        Some(added) => format!("{url}{added}"),
        None => url.to_string(),
    };
    Ok(Prepared {
        headers: h,
        body: signed
            .body
            .map_or_else(|| Bytes::copy_from_slice(body), Bytes::from),
        target,
    })
}

/// `hookgate send`: one line per delivery; the exit code of
/// [`exit_code`].
pub fn run(a: &crate::cli::SendArgs) -> Result<u8, String> {
    let secret = super::sign::secret_from(
        a.secret.as_deref(),
        a.secret_file.as_deref(),
        a.scheme.is_some() && a.private_key.is_none(),
    )?;
    let extra = extra_headers(&a.headers)?;
    let signer = Signer::new(SignerArgs {
        scheme: a.scheme.as_deref(),
        secret: secret.as_deref(),
        private_key: a.private_key.as_deref(),
        config: a.config.as_deref(),
        route: a.route.as_deref(),
    })?;
    let body = if a.body.as_os_str() == "-" {
        super::read_body(None)?
    } else {
        super::read_body(Some(&a.body))?
    };
    let client = Client::new(&a.url)?;
    // The sender signs the public URL with the query it requests.
    let query = url::Url::parse(&a.url)
        .ok()
        .and_then(|u| u.query().map(str::to_string));
    // --public-url, else the route's `verify.public_url`, else --url.
    let public = match a.public_url.as_deref().or(signer.route_public_url()) {
        Some(p) => verify::public_url(p, query.as_deref()),
        None => a.url.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let key = a
        .idempotency_key
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    signer.check_id(&key)?;
    let id_header = signer.id_header().unwrap_or("Idempotency-Key");
    println!("POST {}  {id_header}: {key}", a.url);
    let mut statuses = Vec::new();
    for n in 1..=a.repeat.max(1) {
        let timestamp = a.timestamp.unwrap_or_else(hookgate::verify::unix_now);
        let mut p = prepare(&signer, &body, timestamp, &key, &a.url, &public)?;
        for (name, value) in &extra {
            p.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            p.headers.push((name.clone(), value.clone()));
        }
        let sent = if p.target == a.url {
            rt.block_on(client.post(&p.headers, p.body))
        } else {
            let c = Client::new(&p.target)?;
            rt.block_on(c.post(&p.headers, p.body))
        };
        match sent {
            Ok(sent) => {
                statuses.push(Some(sent.status));
                println!("{}", describe(n, &sent));
            }
            Err(e) => {
                statuses.push(None);
                println!("#{n} ---            could not reach the gateway: {e}");
            }
        }
    }
    Ok(exit_code(&statuses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&[Some(200), Some(200)]), 0);
        assert_eq!(exit_code(&[Some(200), Some(401)]), 1);
        assert_eq!(exit_code(&[Some(401), Some(502)]), 2);
        assert_eq!(exit_code(&[Some(200), None]), 2);
    }

    #[test]
    fn headers_are_name_colon_value() {
        let h = extra_headers(&["X-A: 1".into(), "X-B:a:b".into()]).unwrap();
        assert_eq!(
            h,
            [("X-A".into(), "1".into()), ("X-B".into(), "a:b".into())]
        );
        assert!(extra_headers(&["nocolon".into()]).is_err());
        assert!(extra_headers(&[":v".into()]).is_err());
    }
}
