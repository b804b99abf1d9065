//! A private `redis-server` for one test: its own loopback port, no
//! persistence, killed when dropped. `redis-server` must be installed (CI's
//! `.ci/run` installs it): a test that needs it fails, loudly, without it.
//! [`RedisServer::start_with`] adds options (TLS, cluster, replica) or a
//! config file (a sentinel).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A running `redis-server` child process.
pub struct RedisServer {
    /// Its loopback port.
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// More command-line options, after the config file if any.
    args: Vec<String>,
    /// Whether `dir/redis.conf` is passed first (a sentinel's).
    conf: bool,
}

/// What [`RedisServer::start_with`] runs: a config file's text (written to
/// the server's own directory, which a sentinel rewrites) and options.
pub struct Setup {
    pub conf: Option<String>,
    pub args: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        Self::start_with(|_, _| Setup {
            conf: None,
            args: vec![],
        })
    }

    /// Starts one on a free port with what `setup(port, dir)` asks for,
    /// and waits until it answers `PING` on its plain port.
    pub fn start_with(setup: impl Fn(u16, &Path) -> Setup) -> RedisServer {
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let Setup { conf, args } = setup(port, dir.path());
            if let Some(text) = &conf {
                std::fs::write(dir.path().join("redis.conf"), text).unwrap();
            }
            let mut server = RedisServer {
                port,
                child: None,
                dir,
                args,
                conf: conf.is_some(),
            };
            if server.try_run() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `redis-cli -p <port> args…`, its output (panics if it fails).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `redis-cli` ({e}): install redis-tools"));
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (as a crash would: no goodbye to clients).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty (there is no persistence).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.try_run() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A plain blocking connection, to look at what the gateway wrote.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }

    /// `GET key`.
    pub fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection())
            .unwrap()
    }

    /// `PTTL key` in milliseconds (`-2` missing, `-1` no expiry).
    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.connection())
            .unwrap()
    }

    /// Every key matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut self.connection())
            .unwrap()
    }

    /// Spawns the process on `self.port` and waits until it answers; false
    /// if it exited (the port was taken).
    fn try_run(&mut self) -> bool {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        if self.conf {
            cmd.arg(self.dir.path().join("redis.conf"));
        }
        let child = cmd
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            // Last, so that they override the defaults above.
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `redis-server` ({e}): these tests need it installed \
                     (Debian: apt-get install redis-server; .ci/run does this)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                eprintln!("redis-server on port {port} exited: {status}");
                return false;
            }
            // Our own process must answer, not another test's server that
            // got the port first.
            let pid = self.child.as_ref().unwrap().id();
            if self.answering_pid() == Some(pid) {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} does not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `process_id` of whatever answers on the port, if anything does.
    fn answering_pid(&self) -> Option<u32> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut c = client
            .get_connection_with_timeout(Duration::from_millis(200))
            .ok()?;
        let pong: String = redis::cmd("PING").query(&mut c).ok()?;
        if pong != "PONG" {
            return None;
        }
        let info: String = redis::cmd("INFO").arg("server").query(&mut c).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
