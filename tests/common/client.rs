//! A raw HTTP/1.1 client over `TcpStream`: exact framing, no helpful
//! normalisation; blocking and tokio flavours.

use super::*;

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

/// A plain GET on a fresh connection (the admin listener's endpoints).
pub fn get(addr: std::net::SocketAddr, path: &str) -> Response {
    Conn::open(addr).request(
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}
