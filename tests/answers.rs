//! Input that must get a clear answer, end to end (issue 12, items 13, 14
//! and 16): a malformed chunked body, a transfer coding hookgate does not
//! take, an HTTP/1.0 client behind a chunked receiver, and SIGHUP at any
//! moment of the process's life.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const PATH: &str = "/webhooks/fynapse";

/// A signed request head for `body` in `version`, ending with the blank
/// line.
fn signed_head(version: &str, framing: &str, body: &[u8], key: &str) -> Vec<u8> {
    let sig = fynapse_signature(SECRET, body, signing_time(key));
    format!(
        "POST {PATH} {version}\r\nHost: hooks.test\r\nContent-Type: application/json\r\n\
         Webhook-Signature: {sig}\r\nIdempotency-Key: {key}\r\n{framing}\r\n"
    )
    .into_bytes()
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

#[test]
fn a_malformed_chunked_body_is_answered_400_bad_framing() {
    let (gw, rx) = setup("");
    let body = event_body("evt-bad-chunk", 100);
    let n = body.len();
    let te = "Transfer-Encoding: chunked\r\n";
    let mut no_crlf = format!("{n:x}\r\n").into_bytes();
    no_crlf.extend_from_slice(&body);
    no_crlf.extend_from_slice(b"XX0\r\n\r\n");
    let shapes: Vec<(&str, Vec<u8>)> = vec![
        (
            "a chunk size that is not hex",
            b"zz\r\nabc\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "a chunk size that overflows",
            b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n".to_vec(),
        ),
        ("a chunk not ended by CRLF", no_crlf),
    ];
    for (i, (name, payload)) in shapes.into_iter().enumerate() {
        let mut c = Conn::open(gw.addr);
        let _ = c.write(
            &[
                signed_head("HTTP/1.1", te, &body, &format!("bad-{i}")),
                payload,
            ]
            .concat(),
        );
        let r = c
            .read_response()
            .unwrap_or_else(|e| panic!("{name}: no answer ({e})"));
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "bad_framing"),
            "{name}"
        );
        assert!(
            c.is_closed(Duration::from_secs(10)),
            "{name}: connection kept"
        );
    }
    assert_eq!(rx.accepts(), 0, "nothing forwarded");
    // The well-formed body is forwarded.
    let mut c = Conn::open(gw.addr);
    let r = c.request(&[signed_head("HTTP/1.1", te, &body, "good"), chunked(&body)].concat());
    assert_eq!(r.status, 200);
    assert_eq!(rx.count(), 1);
}

#[test]
fn a_transfer_coding_other_than_chunked_is_refused() {
    let (gw, rx) = setup("");
    let body = event_body("evt-gzip", 100);
    for (i, te) in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        let r = exchange_raw(
            gw.addr,
            &[
                signed_head("HTTP/1.1", te, &body, &format!("te-{i}")),
                chunked(&body),
            ]
            .concat(),
        )
        .unwrap_or_else(|| panic!("{te}: no answer"));
        assert_eq!(
            (r.status, r.error().as_str()),
            (501, "unsupported_transfer_coding"),
            "{te}"
        );
    }
    assert_eq!(rx.accepts(), 0, "nothing forwarded");
}

/// Reads a whole answer off `s` up to the end of the stream.
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut raw = vec![];
    let _ = s.read_to_end(&mut raw);
    raw
}

#[test]
fn an_http10_client_never_gets_a_chunked_answer() {
    let rx = RawReceiver::start();
    let answer =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\n{\"ok\"\r\n6\r\n:true}\r\n0\r\n\r\n"
            .to_vec();
    rx.respond(move |_, _| RawAction::Answer {
        delay: Duration::ZERO,
        bytes: answer.clone(),
    });
    let gw = start_gateway(&config_yaml(free_port(), &rx.url("/hooks"), "", ""));
    let body = event_body("evt-http10", 100);
    for (version, key) in [("HTTP/1.0", "v10"), ("HTTP/1.0", "v10-keep")] {
        let mut framing = format!("Content-Length: {}\r\n", body.len());
        if key == "v10-keep" {
            framing.push_str("Connection: keep-alive\r\n");
        }
        let mut s = TcpStream::connect(gw.addr).unwrap();
        s.write_all(&[signed_head(version, &framing, &body, key), body.clone()].concat())
            .unwrap();
        let raw = read_all(&mut s);
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, got) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{text}");
        assert!(!head.contains("transfer-encoding"), "{key}: {text}");
        assert_eq!(got, r#"{"ok":true}"#, "{key}: the body, close-delimited");
    }
    // An HTTP/1.1 client still gets the receiver's framing.
    let mut c = Conn::open(gw.addr);
    let framing = format!("Content-Length: {}\r\n", body.len());
    let r = c.request(
        &[
            signed_head("HTTP/1.1", &framing, &body, "v11"),
            body.clone(),
        ]
        .concat(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, br#"{"ok":true}"#);
    assert_eq!(rx.count(), 3);
}

/// The binary, killed on drop.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hangup(p: &Process) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_listening(p: &mut Process, addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = p.0.try_wait() {
            panic!("hookgate exited: {status}");
        }
        assert!(Instant::now() < deadline, "hookgate did not start");
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// SIGHUP while `main` reads its config, long before any reloader listens:
/// the config file is a FIFO, so the signal is sent exactly while hookgate
/// waits for its content.
#[test]
fn sighup_before_the_reloader_listens_does_not_end_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("hookgate.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let rx = Receiver::start();
    let port = free_port();
    let yaml = config_yaml(port, &rx.url("/hooks"), "", "");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["run", "--config"])
        .arg(&fifo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Process(child);
    // Opening the FIFO for writing returns once hookgate opened it to read.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    hangup(&p);
    std::thread::sleep(Duration::from_millis(200));
    assert!(p.0.try_wait().unwrap().is_none(), "SIGHUP ended hookgate");
    w.write_all(yaml.as_bytes()).unwrap();
    drop(w);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(&mut p, addr);
    let body = event_body("evt-hup", 100);
    assert_eq!(deliver(addr, &body, "hup").status, 200);
    assert_eq!(rx.count(), 1);
}

/// Dev mode (no `--config`) has no reloader: SIGHUP is ignored. It listens
/// on the dev config's 127.0.0.1:8080; skipped when that port is taken.
#[test]
fn sighup_in_dev_mode_does_not_end_the_process() {
    let addr: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    if std::net::TcpListener::bind(addr).is_err() {
        eprintln!("skipped: {addr} is taken");
        return;
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Process(child);
    wait_listening(&mut p, addr);
    for _ in 0..3 {
        hangup(&p);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(p.0.try_wait().unwrap().is_none(), "SIGHUP ended hookgate");
    assert!(TcpStream::connect(addr).is_ok());
}
