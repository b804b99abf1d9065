//! Running a [`Config`] as a Pingora server: in the foreground for the
//! binary ([`run`]), or on a thread that can be stopped ([`spawn`]) for tests,
//! `hookgate demo` and embedders.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::Notify;

use crate::admin::Admin;
use crate::config::{Backend, Config};
use crate::dedupe::{DedupeStore, MemoryStore, RedisOptions, RedisStore};
use crate::gateway::{Gateway, GatewayProxy};

/// Why a server could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// The dedupe store a config asks for. A Redis store connects lazily, on
/// the first request, so this needs no runtime and no reachable Redis.
pub fn store_for(config: &Config) -> Result<Arc<dyn DedupeStore>, StartError> {
    let d = &config.dedupe;
    match &d.backend {
        Backend::Memory => Ok(Arc::new(MemoryStore::new(
            d.max_entries,
            d.ttl,
            d.in_flight_timeout,
        ))),
        Backend::Redis(r) => {
            let store = RedisStore::new(RedisOptions {
                target: r.target.clone(),
                tls: r.tls.clone(),
                prefix: r.prefix.clone(),
                timeout: r.timeout,
                connections: r.connections,
                ttl: d.ttl,
                in_flight_timeout: d.in_flight_timeout,
                wait_replicas: r.wait_replicas,
            })
            .map_err(|e| StartError(e.to_string()))?;
            Ok(Arc::new(store))
        }
    }
}

/// Pingora refuses nothing when a listener cannot bind: it logs and runs
/// without it. Bind each address once first, so a taken port is an error.
fn check_bindable(addrs: &[SocketAddr]) -> Result<(), StartError> {
    for a in addrs {
        TcpListener::bind(a).map_err(|e| StartError(format!("cannot listen on {a}: {e}")))?;
    }
    Ok(())
}

/// A Pingora server with the gateway service on `config`'s listeners,
/// bootstrapped and ready to `run`. Add your own services before running it.
pub fn build_server(config: &Config, gateway: Arc<Gateway>) -> Result<Server, StartError> {
    check_bindable(&config.server.listen)?;
    if let Some(admin) = config.server.admin {
        check_bindable(&[admin])?;
    }
    let conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        GatewayProxy::new(gateway.clone()),
        "hookgate",
    );
    for addr in &config.server.listen {
        match &config.server.tls {
            Some(tls) => svc
                .add_tls(&addr.to_string(), &tls.cert, &tls.key)
                .map_err(|e| StartError(format!("TLS on {addr}: {e}")))?,
            None => svc.add_tcp(&addr.to_string()),
        }
    }
    svc.threads = Some(config.server.threads);
    server.add_service(svc);
    if let Some(admin) = config.server.admin {
        let app = Admin::new(gateway, config.server.listen.clone());
        let mut svc = pingora::services::listening::Service::new("hookgate admin".to_string(), app);
        svc.add_tcp(&admin.to_string());
        svc.threads = Some(1);
        server.add_service(svc);
    }
    Ok(server)
}

/// Runs the gateway in the foreground until SIGTERM (graceful, within
/// `server.grace_period`) or SIGINT (at once). Does not return on success.
pub fn run(config: &Config) -> Result<(), StartError> {
    let store = store_for(config)?;
    let gateway = Arc::new(Gateway::new(config, store));
    let server = build_server(config, gateway)?;
    server.run_forever()
}

/// A server running on its own thread; stopped when dropped.
pub struct RunningServer {
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

/// A gateway running on its own thread; stopped when dropped.
pub struct RunningGateway {
    /// The server.
    pub server: RunningServer,
    /// The gateway, to inspect its store.
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
            return Err(StartError(format!("nothing listening on {addr}")));
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
        .map_err(|e| StartError(format!("cannot start thread: {e}")))?;
    let running = RunningServer {
        stop,
        thread: Some(thread),
    };
    for addr in ready {
        wait_listening(*addr, Duration::from_secs(10))?;
    }
    Ok(running)
}

/// Starts `config` on a background thread with `store`, and waits until its
/// first listener accepts connections.
pub fn spawn(config: &Config, store: Arc<dyn DedupeStore>) -> Result<RunningGateway, StartError> {
    let gateway = Arc::new(Gateway::new(config, store));
    let server = build_server(config, gateway.clone())?;
    let addr = *config
        .server
        .listen
        .first()
        .ok_or_else(|| StartError("no listen address".into()))?;
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
