//! Real parts for end-to-end tests: a recording HTTP receiver (hyper) on a
//! loopback port, a raw HTTP/1.1 client over `TcpStream` (exact framing, no
//! helpful normalisation), a gateway started from YAML text, and a private
//! `redis-server` ([`redis_server`]).

#![allow(dead_code)]

pub mod redis_server;

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

use hookgate::dedupe::MemoryStore;
use hookgate::server::RunningGateway;
use hookgate::verify::{Fynapse, Scheme};

pub const SECRET: &str = "test-secret-1";

/// A non-blocking listener on `addr` with a deep accept queue (std's
/// `TcpListener::bind` asks for 128, which a burst of connections from the
/// gateway overflows: the kernel then drops SYNs and the connect stalls).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // A port reused on purpose (a receiver coming back) may have
    // connections in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // `listen` on a TcpSocket registers with a reactor: do it in a throwaway
    // runtime and hand the std listener back.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let listener = rt.block_on(async { socket.listen(4096) })?;
    let std_listener = listener.into_std()?;
    std_listener.set_nonblocking(true)?;
    Ok(std_listener)
}

/// An accept loop on a two-worker runtime of its own thread: `on_conn` gets
/// each accepted stream, on that runtime (so it may `tokio::spawn`).
/// Dropping it stops accepting and ends the runtime, and with it every
/// connection task.
pub struct AcceptLoop {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AcceptLoop {
    pub fn start(
        std_listener: TcpListener,
        mut on_conn: impl FnMut(tokio::net::TcpStream) + Send + 'static,
    ) -> AcceptLoop {
        std_listener.set_nonblocking(true).unwrap();
        let (tx, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        acc = listener.accept() => {
                            if let Ok((stream, _)) = acc {
                                on_conn(stream);
                            }
                        }
                    }
                }
            });
        });
        AcceptLoop {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A free loopback port (bind :0, read, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

// ---------------------------------------------------------------- receiver

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// What the receiver answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: vec![],
            body: format!("{{\"received\":{status}}}").into_bytes(),
        }
    }
}

type Behavior = Box<dyn Fn(&Received, usize) -> Reply + Send + Sync>;

pub struct ReceiverState {
    pub requests: Mutex<Vec<Received>>,
    pub accepts: AtomicUsize,
    behavior: Mutex<Arc<Behavior>>,
}

/// A real HTTP/1.1 server on 127.0.0.1, on its own runtime thread.
pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<ReceiverState>,
    _accept: AcceptLoop,
}

impl Receiver {
    /// Answers 200 to everything until told otherwise.
    pub fn start() -> Receiver {
        let std_listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            requests: Mutex::new(vec![]),
            accepts: AtomicUsize::new(0),
            behavior: Mutex::new(Arc::new(Box::new(|_, _| Reply::status(200)))),
        });
        let st = state.clone();
        let accept = AcceptLoop::start(std_listener, move |stream| {
            st.accepts.fetch_add(1, Ordering::SeqCst);
            let st = st.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let st = st.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let rec = Received {
                            method: parts.method.to_string(),
                            target: parts.uri.to_string(),
                            headers: parts.headers,
                            body,
                        };
                        let behavior = st.behavior.lock().unwrap().clone();
                        let n = {
                            let mut reqs = st.requests.lock().unwrap();
                            reqs.push(rec.clone());
                            reqs.len()
                        };
                        let reply = behavior(&rec, n);
                        if !reply.delay.is_zero() {
                            tokio::time::sleep(reply.delay).await;
                        }
                        let mut resp = hyper::Response::builder().status(reply.status);
                        for (k, v) in &reply.headers {
                            resp = resp.header(k, v);
                        }
                        Ok::<_, Infallible>(resp.body(Full::new(Bytes::from(reply.body))).unwrap())
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        });
        Receiver {
            addr,
            state,
            _accept: accept,
        }
    }

    /// Sets how to answer: `f(request, n)` where `n` counts requests from 1.
    pub fn respond(&self, f: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static) {
        *self.state.behavior.lock().unwrap() = Arc::new(Box::new(f));
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    pub fn accepts(&self) -> usize {
        self.state.accepts.load(Ordering::SeqCst)
    }

    pub fn last(&self) -> Received {
        self.state
            .requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("receiver got nothing")
    }

    pub fn all(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

// ---------------------------------------------------------------- gateway

/// A config with one fynapse route `fynapse` at `/webhooks/fynapse` forwarding
/// to `upstream_url`, plus `extra_route_yaml` (indented list items) and
/// `route_extra` (keys added to the fynapse route, indented 4 spaces).
pub fn config_yaml(port: u16, upstream_url: &str, route_extra: &str, more_routes: &str) -> String {
    config_yaml_with_dedupe(port, upstream_url, route_extra, more_routes, DEFAULT_DEDUPE)
}

/// The `dedupe:` block of [`config_yaml`]: keys indented 2 spaces, each line
/// ending in a newline.
pub const DEFAULT_DEDUPE: &str = "  ttl: 1h\n  in_flight_timeout: 30s\n  max_entries: 10000\n";

/// [`config_yaml`] with `dedupe` (like [`DEFAULT_DEDUPE`]) as the `dedupe:`
/// block.
pub fn config_yaml_with_dedupe(
    port: u16,
    upstream_url: &str,
    route_extra: &str,
    more_routes: &str,
    dedupe: &str,
) -> String {
    format!(
        r#"
server:
  listen: ["127.0.0.1:{port}"]
  threads: 2
  body_timeout: 2s
dedupe:
{dedupe}routes:
  - name: fynapse
    path: /webhooks/fynapse
    upstream:
      url: {upstream_url}
      connect_timeout: 1s
      timeout: 2s
    verify:
      scheme: fynapse
      secrets:
        - value: other-secret
        - value: {SECRET}
      tolerance: 5m
    max_body: 8MiB
{route_extra}
{more_routes}
"#
    )
}

pub fn start_gateway(yaml: &str) -> RunningGateway {
    let config = hookgate::config::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let d = &config.dedupe;
    let store = Arc::new(MemoryStore::new(d.max_entries, d.ttl, d.in_flight_timeout));
    hookgate::server::spawn(&config, store).unwrap_or_else(|e| panic!("{e}"))
}

/// A gateway with the dedupe store its config asks for (`server::store_for`),
/// as `hookgate run` builds it.
pub fn start_gateway_with_configured_store(yaml: &str) -> RunningGateway {
    let config = hookgate::config::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let store = hookgate::server::store_for(&config).unwrap_or_else(|e| panic!("{e}"));
    hookgate::server::spawn(&config, store).unwrap_or_else(|e| panic!("{e}"))
}

/// Gateway + receiver with the default fynapse route.
pub fn setup(route_extra: &str) -> (RunningGateway, Receiver) {
    let rx = Receiver::start();
    let gw = start_gateway(&config_yaml(
        free_port(),
        &rx.url("/hooks/balances"),
        route_extra,
        "",
    ));
    (gw, rx)
}

// ---------------------------------------------------------------- client

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` of a rejection.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_string()
    }
}

/// A raw HTTP/1.1 connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Conn {
            reader: BufReader::new(s),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads one response.
    pub fn read_response(&mut self) -> std::io::Result<Response> {
        read_response_from(&mut self.reader)
    }

    /// A second handle on the socket, e.g. to write from another thread
    /// while this one reads.
    pub fn stream(&self) -> TcpStream {
        self.reader.get_ref().try_clone().unwrap()
    }

    /// Reads a status line and headers up to the blank line, as text.
    pub fn read_head(&mut self) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line.trim_end().is_empty() {
                return head;
            }
            head.push_str(&line);
        }
    }

    /// Writes, then reads one response; errors are returned, not unwrapped.
    pub fn read_response_after(&mut self, bytes: &[u8]) -> std::io::Result<Response> {
        self.write(bytes)?;
        self.read_response()
    }

    /// Whether the peer closes the connection within `within`: the next
    /// read finds the end of the stream (or a reset), not more bytes and not
    /// silence.
    pub fn is_closed(&mut self, within: Duration) -> bool {
        let s = self.reader.get_ref();
        s.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 1];
        let r = self.reader.read(&mut b);
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    /// Shuts the connection down abruptly: an RST rather than a FIN, like a
    /// client that crashed.
    pub fn reset(self) {
        // SO_LINGER 0 turns close() into a reset.
        let s = tokio::net::TcpSocket::from_std_stream(self.reader.into_inner());
        let _ = s.set_zero_linger();
        drop(s);
    }

    pub fn request(&mut self, bytes: &[u8]) -> Response {
        self.write(bytes).unwrap();
        self.read_response().unwrap()
    }
}

/// Reads one response off `reader` (framed by Content-Length, chunked, or
/// the end of the stream).
pub fn read_response_from(reader: &mut impl BufRead) -> std::io::Result<Response> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    if status_line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = vec![];
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').ok_or_else(|| invalid(line))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    if status == 100 {
        return read_response_from(reader);
    }
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = vec![];
    if let Some(cl) = find("content-length") {
        body.resize(cl.parse().map_err(|_| invalid(&cl))?, 0);
        reader.read_exact(&mut body)?;
    } else if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(|_| invalid(&size))?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if status != 204 && status != 304 {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("bad response line {what:?}"),
    )
}

/// Writes `bytes` on a fresh connection and reads one answer; `None` when the
/// gateway closed the connection without answering. A write error is
/// ignored: the gateway may close while the client still writes, and the
/// answer (or its absence) is what counts.
pub fn exchange_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Response> {
    let mut c = Conn::open(addr);
    let _ = c.write(bytes);
    c.read_response().ok()
}

/// Request bytes with Content-Length framing.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: hooks.test\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Request bytes with chunked framing (chunks of `chunk` bytes).
pub fn chunked_request_bytes(
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    chunk: usize,
) -> Vec<u8> {
    let mut out =
        format!("POST {path} HTTP/1.1\r\nHost: hooks.test\r\nTransfer-Encoding: chunked\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    for c in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The fynapse signature header for `body` at `t` with `secret`.
pub fn fynapse_signature(secret: &str, body: &[u8], t: i64) -> String {
    let key = Fynapse.derive_key(secret).unwrap();
    Fynapse.sign(&key, body, t, "").remove(0).1
}

/// Headers of a valid fynapse delivery.
pub fn signed_headers(body: &[u8], key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_string()),
        ("Webhook-Signature", fynapse_signature(SECRET, body, now())),
        ("Idempotency-Key", key.to_string()),
    ]
}

/// A balance.extracted body of about `size` bytes.
pub fn event_body(id: &str, size: usize) -> Vec<u8> {
    let head = format!(r#"{{"event_id":"{id}","event_type":"balance.extracted","data":{{"pad":""#);
    let tail = r#""}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut b = head.into_bytes();
    b.extend(std::iter::repeat_n(b'x', pad));
    b.extend_from_slice(tail.as_bytes());
    b
}

/// POSTs a signed delivery on a fresh connection.
pub fn deliver(addr: SocketAddr, body: &[u8], key: &str) -> Response {
    post(addr, "/webhooks/fynapse", &signed_headers(body, key), body)
}

/// POSTs on a fresh connection, `Connection: close`.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
    let mut h = headers.to_vec();
    h.push(("Connection", "close".to_string()));
    Conn::open(addr).request(&request_bytes("POST", path, &h, body))
}

// ---------------------------------------------------------------- async client

/// Sends `bytes` (a request with `Connection: close`) on a fresh connection
/// from a tokio task and reads the whole answer, within `limit`.
pub async fn post_async(
    addr: SocketAddr,
    bytes: &[u8],
    limit: Duration,
) -> std::io::Result<Response> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(bytes).await?;
        let mut raw = vec![];
        s.read_to_end(&mut raw).await?;
        read_response_from(&mut std::io::Cursor::new(raw))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

// ---------------------------------------------------------------- raw receiver

/// A request as a raw receiver read it off the socket.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request framed by `Content-Length` (the only framing the
/// gateway sends upstream) off `stream`; bytes past it stay in `buf`.
/// `None` at the end of the stream, on a reset or on garbage.
pub async fn read_raw_request(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Option<RawRequest> {
    use tokio::io::AsyncReadExt;
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 || stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(Some(0), |(_, v)| v.parse().ok())?;
    while buf.len() < head_end + len {
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(RawRequest {
        request_line,
        headers,
        body,
    })
}

/// Whether the peer still waits for an answer on `stream`: a non-blocking
/// look that finds neither the end of the stream nor a reset. Bytes found
/// are kept in `buf`.
pub fn peer_waiting(stream: &tokio::net::TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; 4096];
    match stream.try_read(&mut tmp) {
        Ok(0) => false,
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// An HTTP/1.1 answer as bytes, framed by Content-Length.
pub fn raw_answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// What a [`RawReceiver`] does with a request it read whole.
#[derive(Clone, Debug)]
pub enum RawAction {
    /// Writes these bytes after `delay`, then reads the next request.
    Answer { delay: Duration, bytes: Vec<u8> },
    /// Writes these bytes, then closes the connection: with a
    /// Content-Length larger than what was written, a cut-off answer.
    AnswerThenClose(Vec<u8>),
    /// Resets the connection without answering.
    Reset,
    /// Never answers; keeps the connection until the peer closes it.
    Hang,
}

type RawBehavior = Arc<dyn Fn(&RawRequest, usize) -> RawAction + Send + Sync>;

pub struct RawState {
    pub requests: Mutex<Vec<RawRequest>>,
    pub accepts: AtomicUsize,
    /// Hung connections that the peer (the gateway) closed.
    pub hung_then_closed: AtomicUsize,
    behavior: Mutex<RawBehavior>,
}

/// A receiver on raw tokio sockets, for what hyper will not do: reset a
/// connection, hang for ever, cut an answer off. Stopped (its runtime and
/// every connection task with it) when dropped.
pub struct RawReceiver {
    pub addr: SocketAddr,
    pub state: Arc<RawState>,
    _accept: AcceptLoop,
}

impl RawReceiver {
    /// Answers 200 to everything until told otherwise.
    pub fn start() -> RawReceiver {
        Self::start_on(listen("127.0.0.1:0".parse().unwrap()).unwrap())
    }

    /// On a listener of the caller's (e.g. a port the gateway already uses).
    pub fn start_on(std_listener: TcpListener) -> RawReceiver {
        let addr = std_listener.local_addr().unwrap();
        let state = Arc::new(RawState {
            requests: Mutex::new(vec![]),
            accepts: AtomicUsize::new(0),
            hung_then_closed: AtomicUsize::new(0),
            behavior: Mutex::new(Arc::new(|_: &RawRequest, _| RawAction::Answer {
                delay: Duration::ZERO,
                bytes: raw_answer(200, &[], b"{}"),
            })),
        });
        let st = state.clone();
        let accept = AcceptLoop::start(std_listener, move |stream| {
            st.accepts.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_raw(stream, st.clone()));
        });
        RawReceiver {
            addr,
            state,
            _accept: accept,
        }
    }

    /// Sets what to do: `f(request, n)` where `n` counts requests from 1.
    pub fn respond(&self, f: impl Fn(&RawRequest, usize) -> RawAction + Send + Sync + 'static) {
        *self.state.behavior.lock().unwrap() = Arc::new(f);
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<RawRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn hung_then_closed(&self) -> usize {
        self.state.hung_then_closed.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

async fn serve_raw(mut stream: tokio::net::TcpStream, st: Arc<RawState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![];
    while let Some(req) = read_raw_request(&mut stream, &mut buf).await {
        let behavior = st.behavior.lock().unwrap().clone();
        let n = {
            let mut reqs = st.requests.lock().unwrap();
            reqs.push(req.clone());
            reqs.len()
        };
        match behavior(&req, n) {
            RawAction::Answer { delay, bytes } => {
                tokio::time::sleep(delay).await;
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            RawAction::AnswerThenClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            RawAction::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            RawAction::Hang => {
                let mut sink = [0u8; 1024];
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
                st.hung_then_closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}
