//! A [`Config`] as a Pingora server: the gateway service on the public
//! listeners, the admin listener, and hot reload ([`build`],
//! [`watch_reload`]); and a server on a thread that can be stopped
//! ([`spawn`], [`spawn_server`]) for tests, `hookgate demo` and embedders.
//!
//! The binary, `demo`, the tests and the embedding example all assemble a
//! server the same way: [`Gateway::from_config`] (or [`Gateway::new`] with
//! a store of your own), then [`build`].

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::Notify;

mod connections;

use crate::admin::Admin;
use crate::config::Config;
use crate::dedupe::StoreError;
use crate::gateway::{Gateway, GatewayProxy};
use crate::reload::Reloader;
use connections::{Guarded, Limits};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener's address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// TLS could not be set up on a listener.
    #[error("TLS on {addr}: {message}")]
    Tls {
        /// The listener that could not take TLS.
        addr: SocketAddr,
        /// Pingora's words.
        message: String,
    },
    /// The dedupe store could not be built from the config.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server thread could not be started.
    #[error("cannot start the server thread: {0}")]
    Thread(std::io::Error),
    /// A listener did not accept connections in time.
    #[error("nothing listening on {0}")]
    NotListening(SocketAddr),
}

/// Pingora refuses nothing when a listener cannot bind: it logs and runs
/// without it. Bind each address once first, so a taken port is an error.
fn check_bindable(addrs: &[SocketAddr]) -> Result<(), StartError> {
    for &addr in addrs {
        TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    }
    Ok(())
}

/// A Pingora server with `gateway` on `config`'s listeners (and its admin
/// listener, if any), bootstrapped and ready to run. Add your own services
/// before running it.
pub fn build(config: &Config, gateway: Arc<Gateway>) -> Result<Server, StartError> {
    let s = &config.server;
    for r in config.routes.iter().filter(|r| r.max_body > s.max_buffered) {
        // Such a body can never be admitted: every one would get `503`.
        tracing::warn!(
            route = %r.name,
            "max_body ({} bytes) is above server.max_buffered ({} bytes): its largest bodies are refused 503 overloaded",
            r.max_body,
            s.max_buffered
        );
    }
    check_bindable(&s.listen)?;
    if let Some(admin) = s.admin {
        check_bindable(&[admin])?;
    }
    let conf = ServerConf {
        threads: s.threads,
        grace_period_seconds: Some(s.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    // Pingora's proxy service, behind the connection bounds it lacks
    // (`connections`): the same listeners, TLS and threads.
    let proxy =
        pingora::proxy::http_proxy(&server.configuration, GatewayProxy::new(gateway.clone()));
    let limits = Limits {
        idle: s.idle_timeout,
        header: s.header_timeout,
    };
    let app = Guarded::new(proxy, s.max_connections, limits, gateway.metrics().clone());
    let mut svc = pingora::services::listening::Service::new("hookgate".to_string(), app);
    for addr in &s.listen {
        match &s.tls {
            Some(tls) => svc
                .add_tls(&addr.to_string(), &tls.cert, &tls.key)
                .map_err(|e| StartError::Tls {
                    addr: *addr,
                    message: e.to_string(),
                })?,
            None => svc.add_tcp(&addr.to_string()),
        }
    }
    svc.threads = Some(s.threads);
    server.add_service(svc);
    if let Some(admin) = s.admin {
        let app = Admin::new(gateway, s.listen.clone());
        let mut svc = pingora::services::listening::Service::new("hookgate admin".to_string(), app);
        svc.add_tcp(&admin.to_string());
        svc.threads = Some(1);
        server.add_service(svc);
    }
    Ok(server)
}

/// Reloads `path` into `gateway` on every SIGHUP, for the life of `server`.
/// `running` is the config the gateway started from; a reload that changes
/// settings only a restart applies says so in the log.
pub fn watch_reload(server: &mut Server, path: PathBuf, gateway: Arc<Gateway>, running: Config) {
    let reloader = Reloader::new(path, gateway, running);
    server.add_service(pingora::services::background::background_service(
        "reload", reloader,
    ));
}

/// Ends the process as soon as no request is in flight once a SIGTERM
/// started the grace period (Pingora would sleep all of it): requests in
/// flight still finish, answering with keep-alive off, and
/// `server.grace_period` stays the upper bound. For the binary only: it
/// calls [`std::process::exit`].
pub fn exit_when_drained(server: &Server, gateway: Arc<Gateway>) -> std::io::Result<()> {
    use pingora::server::ExecutionPhase;
    let mut phases = server.watch_execution_phase();
    std::thread::Builder::new()
        .name("hookgate-drain".into())
        .spawn(move || loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::GracefulTerminate | ExecutionPhase::ShutdownStarted) => {
                    gateway.start_draining();
                }
                Ok(ExecutionPhase::ShutdownGracePeriod) => {
                    gateway.start_draining();
                    while gateway.in_flight() > 0 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    tracing::info!("no request in flight: exiting");
                    std::process::exit(0);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        })
        .map(drop)
}

/// Makes SIGHUP harmless for the rest of the process's life: its default
/// action is to end the process, and until the reloader (or nobody, in dev
/// mode) listens for it, a SIGHUP would (exit 129). Call it first thing in
/// `main`. It installs tokio's handler for the signal, which stays installed
/// for good; a SIGHUP that no reloader listens for is then ignored.
pub fn survive_sighup() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let _in_runtime = rt.enter();
    signal(SignalKind::hangup()).map(drop)
}

/// A server running on its own thread; stopped when dropped.
pub struct RunningServer {
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

/// A gateway running on its own thread; stopped when dropped.
pub struct RunningGateway {
    /// The server thread; dropping it stops the gateway.
    pub server: RunningServer,
    /// The gateway, to inspect its store and metrics.
    pub gateway: Arc<Gateway>,
    /// The first listen address.
    pub addr: SocketAddr,
}

struct StopWatch(Arc<Notify>);

#[async_trait]
impl ShutdownSignalWatch for StopWatch {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

/// Waits until `addr` accepts connections, at most `limit`.
pub fn wait_listening(addr: SocketAddr, limit: Duration) -> Result<(), StartError> {
    let deadline = Instant::now() + limit;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(StartError::NotListening(addr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Runs `server` on a background thread until the result is dropped (or
/// [`RunningServer::stop`]ped), and waits until each of `ready` accepts
/// connections (at most 10 s).
pub fn spawn_server(server: Server, ready: &[SocketAddr]) -> Result<RunningServer, StartError> {
    let stop = Arc::new(Notify::new());
    let watch = StopWatch(stop.clone());
    let thread = std::thread::Builder::new()
        .name("hookgate-server".into())
        .spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(watch),
            })
        })
        .map_err(StartError::Thread)?;
    let running = RunningServer {
        stop,
        thread: Some(thread),
    };
    for addr in ready {
        wait_listening(*addr, Duration::from_secs(10))?;
    }
    Ok(running)
}

/// Starts `gateway` on `config`'s listeners on a background thread, and
/// waits until its first listener accepts connections.
pub fn spawn(config: &Config, gateway: Arc<Gateway>) -> Result<RunningGateway, StartError> {
    let server = build(config, gateway.clone())?;
    // The config layer always provides at least one listener.
    let addr = config.server.listen[0];
    let server = spawn_server(server, &[addr])?;
    Ok(RunningGateway {
        server,
        gateway,
        addr,
    })
}

impl RunningServer {
    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
