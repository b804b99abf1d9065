//! Real HTTP receivers on loopback: a recording hyper server ([`Receiver`])
//! and a raw tokio one ([`RawReceiver`]) for exact framing and faults.

use super::*;

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
