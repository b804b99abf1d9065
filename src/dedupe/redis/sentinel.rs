//! The Sentinel backend: the primary behind a set of sentinels, found by
//! asking them, and watched for failovers.

use super::*;

/// The primary behind a set of sentinels.
pub(super) struct SentinelBackend {
    pub(super) master: String,
    /// One client per sentinel, asked in turn.
    pub(super) sentinels: Vec<::redis::Client>,
    /// The primary's URL but for its host and port.
    pub(super) node: url::Url,
    pub(super) tls: Option<TlsCertificates>,
    /// The current connection to the primary per configured connection;
    /// `None` until the first call, and again after a failure.
    pub(super) pool: Vec<Mutex<Option<MultiplexedConnection>>>,
    /// The primary's address the connections go to, as a sentinel named it.
    pub(super) primary: Mutex<Option<(String, u16)>>,
    /// Whether a watcher task runs.
    pub(super) watching: AtomicBool,
    pub(super) timeout: Duration,
}

/// How often a Sentinel store asks the sentinels whether the primary moved.
pub const SENTINEL_WATCH: Duration = Duration::from_millis(500);

impl SentinelBackend {
    pub(super) fn config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
    }

    /// Asks one sentinel where the primary is (`SENTINEL MASTER`), with the
    /// configuration epoch of that answer.
    pub(super) async fn ask(
        &self,
        sentinel: &::redis::Client,
    ) -> Result<((String, u16), u64), RedisError> {
        let mut c = sentinel
            .get_multiplexed_async_connection_with_config(&self.config())
            .await?;
        let fields: std::collections::HashMap<String, String> = ::redis::cmd("SENTINEL")
            .arg("MASTER")
            .arg(&self.master)
            .query_async(&mut c)
            .await?;
        let ip = fields.get("ip").cloned();
        let port = fields.get("port").and_then(|p| p.parse::<u16>().ok());
        let epoch = fields
            .get("config-epoch")
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(0);
        match (ip, port) {
            (Some(ip), Some(port)) => Ok(((ip, port), epoch)),
            _ => Err(RedisError::from((
                ErrorKind::Client,
                "a sentinel gave no usable primary address",
            ))),
        }
    }

    /// Asks every sentinel where the primary is and takes the answer of the
    /// newest configuration (the highest `config-epoch`, as the sentinels
    /// themselves do): right after a failover, the sentinels that have not
    /// heard of it yet still name the old primary.
    pub(super) async fn primary_addr(&self) -> Result<(String, u16), RedisError> {
        let mut best: Option<((String, u16), u64)> = None;
        let mut last = None;
        for sentinel in &self.sentinels {
            match self.ask(sentinel).await {
                Ok((addr, epoch)) => {
                    if best.as_ref().is_none_or(|(_, e)| epoch > *e) {
                        best = Some((addr, epoch));
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        best.map(|(a, _)| a).ok_or_else(|| {
            last.unwrap_or_else(|| RedisError::from((ErrorKind::Client, "no sentinel configured")))
        })
    }

    /// Finds the primary through the sentinels, connects to it and checks
    /// that it calls itself primary.
    pub(super) async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        let (host, port) = self.primary_addr().await?;
        let mut node = self.node.clone();
        if node.set_host(Some(&host)).is_err() || node.set_port(Some(port)).is_err() {
            return Err(RedisError::from((
                ErrorKind::Client,
                "the sentinels named an unusable primary address",
            )));
        }
        let client = open_client(node.as_str(), self.tls.as_ref())?;
        let mut c = client
            .get_multiplexed_async_connection_with_config(&self.config())
            .await?;
        let role: Vec<::redis::Value> = ::redis::cmd("ROLE").query_async(&mut c).await?;
        let is_master = matches!(role.first(), Some(v) if String::from_redis_value(v.clone()).is_ok_and(|r| r == "master"));
        if !is_master {
            return Err(RedisError::from((
                ErrorKind::Server(ServerErrorKind::ReadOnly),
                "the server the sentinels name is not a primary (failover in progress)",
            )));
        }
        if let Ok(mut p) = self.primary.lock() {
            *p = Some((host, port));
        }
        Ok(c)
    }

    /// Drops every connection: the next calls ask the sentinels again.
    pub(super) fn forget(&self) {
        for slot in &self.pool {
            if let Ok(mut slot) = slot.lock() {
                *slot = None;
            }
        }
    }

    /// Starts (once per runtime that still runs it) a task that asks the
    /// sentinels every [`SENTINEL_WATCH`] where the primary is, and drops
    /// the connections when it moved. The old primary goes on accepting
    /// writes after a failover until Sentinel demotes it (seconds later):
    /// without this, those writes would be lost.
    pub(super) fn watch(self: &Arc<Self>) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.watching.store(false, Ordering::SeqCst);
            return;
        };
        /// Lets the next call start a watcher when this one ends (its
        /// runtime shut down, or the store was dropped).
        struct Unwatch(std::sync::Weak<SentinelBackend>);
        impl Drop for Unwatch {
            fn drop(&mut self) {
                if let Some(s) = self.0.upgrade() {
                    s.watching.store(false, Ordering::SeqCst);
                }
            }
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let _unwatch = Unwatch(weak.clone());
            loop {
                tokio::time::sleep(SENTINEL_WATCH).await;
                let Some(s) = weak.upgrade() else { return };
                let Ok(now) = s.primary_addr().await else {
                    continue;
                };
                let moved = s
                    .primary
                    .lock()
                    .is_ok_and(|p| p.as_ref().is_some_and(|p| *p != now));
                if moved {
                    tracing::warn!("redis sentinel: the primary moved; reconnecting");
                    s.forget();
                    if let Ok(mut p) = s.primary.lock() {
                        *p = None;
                    }
                }
            }
        });
    }
}
