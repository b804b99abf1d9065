//! Operating hookgate: the admin listener's metrics and health, hot reload
//! on SIGHUP, TLS.

mod common;

use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// The value of one sample line of a Prometheus text page, or 0.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_a_known_mix_exactly() {
    let rx = Receiver::start();
    rx.respond(|r, _| {
        if r.header("idempotency-key").as_deref() == Some("fails") {
            Reply::status(500)
        } else {
            Reply::status(200)
        }
    });
    let admin = free_port();
    let yaml = TestConfig::fynapse(free_port(), &rx.url("/in"))
        .server_with("admin", json!(format!("127.0.0.1:{admin}")))
        .yaml();
    let gw = start_gateway(&yaml);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();

    for k in ["a", "b", "c"] {
        assert_eq!(deliver(gw.addr, &event_body(k, 100), k).status, 200);
    }
    for k in ["a", "b"] {
        assert_eq!(
            deliver(gw.addr, &event_body(k, 100), k).header("hookgate-duplicate"),
            Some("true")
        );
    }
    assert_eq!(deliver(gw.addr, &event_body("f", 100), "fails").status, 500);
    let body = event_body("x", 100);
    let mut forged = signed_headers(&body, "x");
    forged[1].1 = fynapse_signature("nope", &body, now());
    assert_eq!(
        post(gw.addr, "/webhooks/fynapse", &forged, &body).status,
        401
    );
    assert_eq!(post(gw.addr, "/nowhere", &forged, &body).status, 404);
    // The admin endpoints are not on the public listener.
    assert_eq!(get(gw.addr, "/metrics").status, 404);

    // The log phase runs just after each answer: poll until the last counts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = String::from_utf8(get(admin, "/metrics").body).unwrap();
        if sample(
            &page,
            r#"hookgate_requests_total{outcome="rejected",reason="no_route",route="-"}"#,
        ) >= 2.0
            || Instant::now() > deadline
        {
            break page;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let expect = [
        (
            r#"hookgate_requests_total{outcome="forwarded",reason="-",route="fynapse"}"#,
            4.0,
        ),
        (
            r#"hookgate_requests_total{outcome="duplicate",reason="-",route="fynapse"}"#,
            2.0,
        ),
        (
            r#"hookgate_requests_total{outcome="rejected",reason="signature_mismatch",route="fynapse"}"#,
            1.0,
        ),
        (
            r#"hookgate_requests_total{outcome="rejected",reason="no_route",route="-"}"#,
            2.0,
        ),
        (r#"hookgate_duplicates_total{route="fynapse"}"#, 2.0),
        (
            r#"hookgate_upstream_responses_total{class="2xx",route="fynapse"}"#,
            3.0,
        ),
        (
            r#"hookgate_upstream_responses_total{class="5xx",route="fynapse"}"#,
            1.0,
        ),
        (r#"hookgate_inflight_reservations{route="fynapse"}"#, 0.0),
        (
            r#"hookgate_request_duration_seconds_count{route="fynapse"}"#,
            7.0,
        ),
        (
            r#"hookgate_upstream_duration_seconds_count{route="fynapse"}"#,
            4.0,
        ),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&page, series), value, "{series}\n{page}");
    }
    assert!(page.contains("hookgate_dedupe_entries"), "{page}");

    assert_eq!(get(admin, "/healthz").status, 200);
    assert_eq!(get(admin, "/readyz").status, 200);
    assert_eq!(get(admin, "/nothing").status, 404);
}

/// The binary, started on a config file, killed on drop.
struct Process {
    child: std::process::Child,
}

impl Process {
    fn start(config: &std::path::Path, wait_for: std::net::SocketAddr) -> Process {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let p = Process { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(wait_for).is_err() {
            assert!(Instant::now() < deadline, "hookgate did not start");
            std::thread::sleep(Duration::from_millis(30));
        }
        p
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_reloads_a_valid_file_and_refuses_an_invalid_one_without_dropping_traffic() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let rx = Receiver::start();
    let port = free_port();
    let admin = free_port();
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let base_config = TestConfig::fynapse(port, &rx.url("/in"))
        .server_with("admin", json!(format!("127.0.0.1:{admin}")));
    let base = base_config.yaml();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookgate.yaml");
    std::fs::write(&path, &base).unwrap();
    let gw = Process::start(&path, format!("127.0.0.1:{port}").parse().unwrap());
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    assert_eq!(
        deliver(addr, &event_body("before", 100), "before-reload").status,
        200
    );

    // A client keeps sending throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let client = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let r = deliver(addr, &event_body("during", 200), &format!("during-{i}"));
                sent.fetch_add(1, Ordering::SeqCst);
                if r.status != 200 {
                    failed.lock().unwrap().push(r.status);
                }
            }
        })
    };
    let reloads = |result: &str| {
        let page = String::from_utf8(get(admin_addr, "/metrics").body).unwrap();
        sample(
            &page,
            &format!("hookgate_config_reloads_total{{result=\"{result}\"}}"),
        )
    };
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(30));
        }
    };

    let progress = |n: usize| {
        let target = sent.load(Ordering::SeqCst) + n;
        wait_for(&|| sent.load(Ordering::SeqCst) >= target);
    };

    // An invalid file is refused; the old config keeps serving.
    progress(3);
    let mut nonsense = base_config.clone();
    nonsense.routes[0]["verify"]["scheme"] = json!("nonsense");
    std::fs::write(&path, nonsense.yaml()).unwrap();
    gw.signal("-HUP");
    wait_for(&|| reloads("refused") == 1.0);
    assert_eq!(
        deliver(addr, &event_body("x", 100), "after-refused").status,
        200
    );

    // A valid file with a new route is swapped in.
    let added = base_config.clone().route(json!({
        "name": "added",
        "path": "/webhooks/added",
        "upstream": { "url": rx.url("/added") },
        "verify": { "scheme": "fynapse", "secrets": [ { "value": SECRET } ] }
    }));
    std::fs::write(&path, added.yaml()).unwrap();
    progress(3);
    gw.signal("-HUP");
    wait_for(&|| reloads("ok") == 1.0);
    progress(3);
    let body = event_body("added", 100);
    assert_eq!(
        post(
            addr,
            "/webhooks/added",
            &signed_headers(&body, "added-1"),
            &body
        )
        .status,
        200
    );
    assert!(
        rx.all().iter().any(|r| r.target == "/added"),
        "the new route forwards to its upstream"
    );

    // Dedupe state survived the reload.
    let r = deliver(addr, &event_body("before", 100), "before-reload");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));

    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    assert!(sent.load(Ordering::SeqCst) > 5, "the client kept sending");
    assert_eq!(
        *failed.lock().unwrap(),
        Vec::<u16>::new(),
        "no request failed during the reloads"
    );
}

mod tls {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use std::io::{Read, Write};
    use std::sync::Arc;

    pub struct Certs {
        pub dir: tempfile::TempDir,
        pub ca_der: Vec<u8>,
    }

    impl Certs {
        pub fn path(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }
    }

    /// A CA and a leaf for localhost / 127.0.0.1, as PEM files.
    pub fn make() -> Certs {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hookgate test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        Certs {
            dir,
            ca_der: ca.der().to_vec(),
        }
    }

    /// Sends raw request bytes over TLS (trusting only `ca_der`) and returns
    /// the status and the raw answer.
    pub fn send(addr: std::net::SocketAddr, ca_der: &[u8], bytes: &[u8]) -> (u16, String) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

#[test]
fn tls_termination_with_a_real_tls_client() {
    let certs = tls::make();
    let rx = Receiver::start();
    let port = free_port();
    let yaml = TestConfig::fynapse(port, &rx.url("/in"))
        .server_with(
            "tls",
            json!({ "cert": certs.path("cert.pem"), "key": certs.path("key.pem") }),
        )
        .yaml();
    let gw = start_gateway(&yaml);
    let body = event_body("tls", 300);
    let mut h = signed_headers(&body, "tls-1");
    h.push(("Connection", "close".into()));
    let (status, text) = tls::send(
        gw.addr,
        &certs.ca_der,
        &request_bytes("POST", "/webhooks/fynapse", &h, &body),
    );
    assert_eq!(status, 200, "{text}");
    let got = rx.last();
    assert_eq!(sha(&got.body), sha(&body));
    assert_eq!(got.header("x-forwarded-proto").as_deref(), Some("https"));
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = Conn::open(gw.addr).read_response_after(&request_bytes(
        "POST",
        "/webhooks/fynapse",
        &h,
        &body,
    ));
    assert!(plain.is_err() || plain.unwrap().status != 200);
    assert_eq!(rx.count(), 1);
}

/// The connection bounds sit between Pingora's TLS and its HTTP: the
/// `408` for a partial header is written through the TLS session, and an
/// idle TLS connection is closed.
#[test]
fn header_and_idle_timeouts_hold_over_tls() {
    let certs = tls::make();
    let rx = Receiver::start();
    let yaml = TestConfig::fynapse(free_port(), &rx.url("/in"))
        .server_with(
            "tls",
            json!({ "cert": certs.path("cert.pem"), "key": certs.path("key.pem") }),
        )
        .server_with("header_timeout", json!("1s"))
        .server_with("idle_timeout", json!("1s"))
        .yaml();
    let gw = start_gateway(&yaml);
    let (status, text) = tls::send(
        gw.addr,
        &certs.ca_der,
        b"POST /webhooks/fynapse HTTP/1.1\r\nHost: hooks.test\r\n",
    );
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("header_timeout"), "{text}");
    // A delivery without `Connection: close`: answered, then closed when idle
    // (`send` reads to the end of the stream, or gives up after 10 s).
    let body = event_body("tls-idle", 300);
    let started = Instant::now();
    let (status, text) = tls::send(
        gw.addr,
        &certs.ca_der,
        &request_bytes(
            "POST",
            "/webhooks/fynapse",
            &signed_headers(&body, "tls-idle"),
            &body,
        ),
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the gateway did not close the idle connection"
    );
    assert_eq!(rx.count(), 1);
}

#[test]
fn https_upstream_verified_with_a_route_ca_file() {
    let certs = tls::make();
    let rx = Receiver::start();
    // The https upstream: a second hookgate with a TLS listener, in front of the receiver.
    let inner_port = free_port();
    let inner = start_gateway(
        &TestConfig::fynapse(inner_port, &rx.url("/in"))
            .server_with(
                "tls",
                json!({ "cert": certs.path("cert.pem"), "key": certs.path("key.pem") }),
            )
            .yaml(),
    );
    let upstream = format!("https://localhost:{inner_port}/webhooks/fynapse");
    let mut with_ca = TestConfig::fynapse(free_port(), &upstream);
    with_ca.routes[0]["upstream"]["ca"] = json!(certs.path("ca.pem"));
    let with_ca = with_ca.yaml();
    let outer = start_gateway(&with_ca);
    let body = event_body("https-up", 300);
    let r = deliver(outer.addr, &body, "up-1");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(sha(&rx.last().body), sha(&body));

    // With the system roots only, the test CA is not trusted: 502, nothing forwarded.
    let system_roots = start_gateway(&config_yaml(free_port(), &upstream, "", ""));
    let r = deliver(system_roots.addr, &event_body("https-up2", 100), "up-2");
    assert_eq!(
        (r.status, r.error()),
        (502, "upstream_unreachable".to_string())
    );
    assert_eq!(rx.count(), 1);
    drop(inner);
}

#[test]
fn bad_tls_files_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let junk = junk.display().to_string();
    let yaml = TestConfig::fynapse(free_port(), "http://127.0.0.1:9/x")
        .server_with("tls", json!({ "cert": junk, "key": junk }))
        .yaml();
    let tls_line = 1 + yaml.lines().position(|l| l.contains("\"tls\"")).unwrap();
    let err = hookgate::config::from_yaml(&yaml, "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("line {tls_line}")) && err.contains("server.tls"),
        "{err}"
    );
    let mut config = TestConfig::fynapse(free_port(), "https://localhost:9/x");
    config.routes[0]["upstream"]["ca"] = json!(junk);
    let yaml = config.yaml();
    let err = hookgate::config::from_yaml(&yaml, "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("upstream.ca"), "{err}");
}
