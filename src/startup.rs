//! Wiring: builds the producer and both HTTP servers from [`Settings`], runs them, and shuts
//! them down in an order that loses nothing it can save.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use rdkafka::error::KafkaError;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::configuration::{AckMode, KafkaTarget, Settings};
use crate::dedup::RecentCallbacks;
use crate::error::{CallbackError, Unavailable};
use crate::kafka::{
    producer_config, EmbeddedCluster, ProducerDefaults, Publisher, PublisherOptions,
};
use crate::metrics::Metrics;
use crate::routes;
use crate::spool::{self, Spool, SpoolOptions};
use crate::zego::CallbackSecrets;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// librdkafka's default `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room for a record's key, CloudEvents headers and batch framing within `message.max.bytes`.
const RECORD_OVERHEAD_BYTES: usize = 4096;
/// Partitions of each topic of the embedded cluster.
const EMBEDDED_PARTITIONS: i32 = 3;

/// What every request handler shares.
pub struct AppState {
    pub secrets: CallbackSecrets,
    /// With ack mode `spooled`.
    pub spool: Option<Arc<Spool>>,
    pub ack_mode: AckMode,
    pub delivery_timeout: Duration,
    pub body_read_timeout: Duration,
    pub recent: RecentCallbacks,
    pub max_clock_skew_secs: u64,
    pub max_body_bytes: usize,
    /// Bytes of request bodies all requests together may hold in memory, as permits.
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// The largest event the producer takes (`message.max.bytes`, less room for the record's
    /// key and headers): a larger one is refused with 413, never acknowledged and then lost.
    pub max_event_bytes: usize,
    pub retry_after_secs: u64,
    pub spool_liveness_grace: Duration,
    pub publisher: Arc<Publisher>,
    pub metrics: Arc<Metrics>,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub fn unavailable(&self, cause: Unavailable) -> CallbackError {
        CallbackError::Unavailable {
            cause,
            retry_after_secs: self.retry_after_secs,
        }
    }

    /// Why the process should be restarted; `None` while it works or can still recover by
    /// itself. A spool that has failed to write for longer than the grace will not recover in
    /// place: a restart (perhaps on another node) is the remedy.
    pub fn liveness_problem(&self) -> Option<String> {
        let spool = self.spool.as_ref()?;
        let failing_for = spool.failing_for()?;
        (failing_for > self.spool_liveness_grace).then(|| {
            format!(
                "the spool has not been able to write to disk for {} s: {}",
                failing_for.as_secs(),
                spool.failure().unwrap_or_default()
            )
        })
    }

    /// Why the bridge cannot take callbacks now; empty when it can.
    pub fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.is_shutting_down() {
            reasons.push("shutting down".to_owned());
        }
        let health = self.publisher.health();
        if let Some(fatal) = health.fatal_error() {
            reasons.push(format!("Kafka producer failed: {fatal}"));
        }
        if let Some(refusal) = health.refusal() {
            reasons.push(format!("Kafka refuses the bridge's connection: {refusal}"));
        }
        if let Some(spool) = &self.spool {
            if let Some(failure) = spool.failure() {
                reasons.push(format!("the spool cannot write to disk: {failure}"));
            }
            if spool.is_full() {
                reasons.push("the spool is full".to_owned());
            }
            // With a spool the bridge takes callbacks while Kafka is away.
            return reasons;
        }
        if !self.publisher.kafka_available() {
            reasons.push(
                "Kafka has been unreachable longer than ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS"
                    .to_owned(),
            );
        }
        reasons
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr} (set by {variable}): {source}")]
    Bind {
        variable: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// Never the values of the properties: they may hold passwords.
    #[error("cannot create the Kafka producer: {0} (check ZEGO_BRIDGE_KAFKA_BROKERS and the ZEGO_BRIDGE_LIBRDKAFKA_* variables)")]
    Producer(String),
    #[error("cannot start the embedded Kafka cluster: {0}")]
    Embedded(KafkaError),
    #[error("cannot start the HTTP server: {0}")]
    Server(std::io::Error),
    #[error("cannot write the dead-letter file {path} (set by ZEGO_BRIDGE_DEAD_LETTER_PATH): {source}; acknowledged events that Kafka refuses would be lost")]
    DeadLetter {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the spool in {dir} (set by ZEGO_BRIDGE_SPOOL_DIR): {source}")]
    Spool {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Stops a running [`Application`] as SIGTERM would.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.notify_one();
    }
}

/// What shutting down achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Accepted events that were still not delivered when the deadline passed, and were
    /// dead-lettered (ack modes `queued` and `delivered`).
    pub undelivered: i32,
    /// Accepted events kept in the spool for the next start (ack mode `spooled`).
    pub left_in_spool: u64,
}

pub struct Application {
    public_port: u16,
    admin_port: u16,
    public_server: Server,
    admin_server: Server,
    state: web::Data<AppState>,
    shutdown_timeout: Duration,
    probe_interval: Duration,
    stop: Arc<Notify>,
    background: Vec<tokio::task::JoinHandle<()>>,
    // Declared last so it is dropped last: the producer must go before the cluster it talks to.
    embedded: Option<EmbeddedCluster>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let started = Instant::now();
        let metrics = Arc::new(Metrics::new());
        metrics.initialize_series(&settings.topics.distinct());
        let (bootstrap, embedded) = match &settings.kafka {
            KafkaTarget::Brokers(brokers) => (brokers.clone(), None),
            KafkaTarget::Embedded => {
                let cluster =
                    EmbeddedCluster::start(&settings.topics.distinct(), EMBEDDED_PARTITIONS)
                        .map_err(StartupError::Embedded)?;
                warn!(
                    bootstrap = cluster.bootstrap_servers(),
                    "ZEGO_BRIDGE_KAFKA_BROKERS is not set: publishing to an EMBEDDED IN-MEMORY Kafka \
                     cluster. NOTHING IS PERSISTED and events vanish when the process exits. \
                     Set ZEGO_BRIDGE_KAFKA_BROKERS for real use."
                );
                (cluster.bootstrap_servers().to_owned(), Some(cluster))
            }
        };
        if embedded.is_some() && settings.secrets.count() == 1 {
            warn!(
                "ZEGO_BRIDGE_CALLBACK_SECRETS is not set: accepting callbacks signed with the demo \
                 secret `{}` (what `zego-kafka-bridge send` uses by default)",
                crate::configuration::DEMO_SECRET
            );
        }
        let mut config = producer_config(&bootstrap, &settings.librdkafka);
        if settings.ack_mode == AckMode::Delivered
            && !settings.librdkafka.0.contains_key("linger.ms")
        {
            config.set("linger.ms", ProducerDefaults::DELIVERED_LINGER_MS);
        }
        if settings.ack_mode == AckMode::Spooled
            && !settings.librdkafka.0.contains_key("message.timeout.ms")
        {
            // The spool holds every event until Kafka takes it: retry without end rather than
            // give up after a timeout.
            config.set("message.timeout.ms", "0");
        }
        let max_event_bytes = config
            .get("message.max.bytes")
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES)
            .saturating_sub(RECORD_OVERHEAD_BYTES);
        if let Some(capacity) = config
            .get("queue.buffering.max.messages")
            .and_then(|value| value.parse().ok())
        {
            metrics.set_queue_capacity(capacity);
        }
        crate::kafka::DeadLetterFile::new(&settings.dead_letter_path)
            .check_writable()
            .map_err(|source| StartupError::DeadLetter {
                path: settings.dead_letter_path.clone(),
                source,
            })?;
        let options = PublisherOptions {
            topics: settings.topics.clone(),
            log_events: settings.log_events,
            dead_letter_path: settings.dead_letter_path.clone(),
            unavailable_after: settings.unavailable_after,
        };
        let publisher = Arc::new(Publisher::new(&config, options, metrics.clone()).map_err(
            |err| {
                let (property, reason) =
                    crate::kafka::redacted_config_error(&err, &settings.librdkafka);
                StartupError::Producer(if property.is_empty() {
                    reason
                } else {
                    format!("`{property}`: {reason}")
                })
            },
        )?);
        let background = publisher.start();
        let spool = match settings.ack_mode {
            AckMode::Spooled => {
                let spool_error = |source| StartupError::Spool {
                    dir: settings.spool_dir.clone(),
                    source,
                };
                spool::check_dir(&settings.spool_dir).map_err(spool_error)?;
                let options = SpoolOptions {
                    dir: settings.spool_dir.clone(),
                    max_bytes: settings.spool_max_bytes,
                    window: 10_000,
                };
                let spool = Arc::new(Spool::open(&options, metrics.clone()).map_err(spool_error)?);
                metrics.set_spool_capacity(settings.spool_max_bytes);
                spool.start_draining(publisher.clone());
                Some(spool)
            }
            _ => None,
        };
        // One probe before serving, so readiness and missing topics are known from the start.
        probe(&publisher).await;

        let state = web::Data::new(AppState {
            secrets: settings.secrets.clone(),
            spool,
            ack_mode: settings.ack_mode,
            delivery_timeout: settings.delivery_timeout,
            body_read_timeout: settings.http_limits.request_timeout,
            recent: RecentCallbacks::new(settings.dedup_capacity),
            max_clock_skew_secs: settings.max_clock_skew_secs,
            max_body_bytes: settings.max_body_bytes,
            body_budget: Arc::new(tokio::sync::Semaphore::new(
                settings.http_limits.max_buffered_body_bytes,
            )),
            max_event_bytes,
            retry_after_secs: settings.retry_after_secs,
            spool_liveness_grace: settings.spool_liveness_grace,
            publisher,
            metrics,
            shutting_down: AtomicBool::new(false),
        });

        let public_listener = bind("ZEGO_BRIDGE_LISTEN_ADDR", settings.listen_addr)?;
        let admin_listener = bind("ZEGO_BRIDGE_ADMIN_ADDR", settings.admin_addr)?;
        let public_port = port_of(&public_listener)?;
        let admin_port = port_of(&admin_listener)?;
        let drain_secs = settings.shutdown_timeout.as_secs().max(1);

        let public_state = state.clone();
        let public_server = HttpServer::new(move || {
            App::new()
                .app_data(public_state.clone())
                .service(
                    web::resource("/v1/callbacks")
                        .route(web::post().to(routes::receive_callback))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .default_service(web::to(routes::not_found))
        })
        .workers(settings.http_workers)
        .client_request_timeout(settings.http_limits.request_timeout)
        .keep_alive(settings.http_limits.keep_alive)
        // A connection refused mid-body (413, 503 past the body budget) is closed at once
        // rather than lingering with its buffers for the default second.
        .client_disconnect_timeout(Duration::from_millis(100))
        .max_connections(settings.http_limits.max_connections_per_worker)
        .disable_signals()
        .shutdown_timeout(drain_secs)
        .listen(public_listener)
        .map_err(StartupError::Server)?
        .run();

        let admin_state = state.clone();
        let admin_server = HttpServer::new(move || {
            App::new()
                .app_data(admin_state.clone())
                .route("/metrics", web::get().to(routes::metrics))
                .route("/healthz", web::get().to(routes::healthz))
                .route("/readyz", web::get().to(routes::readyz))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(admin_listener)
        .map_err(StartupError::Server)?
        .run();

        info!(
            public = %settings.listen_addr.ip(), public_port,
            admin = %settings.admin_addr.ip(), admin_port,
            secrets = settings.secrets.count(),
            ack_mode = settings.ack_mode.as_str(),
            startup_ms = started.elapsed().as_millis() as u64,
            "zego-kafka-bridge listening: callbacks on POST /v1/callbacks, metrics and probes on the admin port"
        );
        Ok(Application {
            public_port,
            admin_port,
            public_server,
            admin_server,
            state,
            shutdown_timeout: settings.shutdown_timeout,
            probe_interval: settings.probe_interval,
            stop: Arc::new(Notify::new()),
            background,
            embedded,
        })
    }

    pub fn public_port(&self) -> u16 {
        self.public_port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Serves until SIGTERM, SIGINT or [`ShutdownHandle::shutdown`], then shuts down: refuse new
    /// callbacks with 503, finish those in progress, flush the producer within the deadline.
    pub async fn run_until_stopped(self) -> std::io::Result<ShutdownReport> {
        let Application {
            public_server,
            admin_server,
            state,
            shutdown_timeout,
            probe_interval,
            stop,
            background,
            embedded,
            ..
        } = self;
        let public_handle = public_server.handle();
        let admin_handle = admin_server.handle();
        let mut public_task = tokio::spawn(public_server);
        let admin_task = tokio::spawn(admin_server);
        let prober = tokio::spawn(probe_loop(state.publisher.clone(), probe_interval));

        tokio::select! {
            signal = shutdown_signal() => info!(signal, "shutting down"),
            () = stop.notified() => info!("shutting down on request"),
            result = &mut public_task => {
                error!(?result, "the public HTTP server stopped by itself");
            }
        }
        let deadline = Instant::now() + shutdown_timeout;
        state.begin_shutdown();
        state.metrics.set_ready(false);
        public_handle.stop(true).await;
        if let Some(spool) = &state.spool {
            spool.stop_appending();
        }

        let queued = state.publisher.queue_depth();
        let publisher = state.publisher.clone();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let undelivered = tokio::task::spawn_blocking(move || publisher.flush(remaining))
            .await
            .unwrap_or(queued);
        let report = match &state.spool {
            // What did not make it stays in the spool: it is published at the next start.
            Some(spool) => {
                let left = spool.finish().await;
                if left.pending > 0 {
                    warn!(
                        pending = left.pending,
                        "events remain in the spool; they are published at the next start"
                    );
                } else {
                    info!("the spool is empty: every accepted event is in Kafka");
                }
                ShutdownReport {
                    undelivered: 0,
                    left_in_spool: left.pending,
                }
            }
            None => {
                if undelivered > 0 {
                    error!(
                        undelivered,
                        deadline_ms = shutdown_timeout.as_millis() as u64,
                        "accepted events were still undelivered at the shutdown deadline: they \
                         were written to the dead-letter file (raise ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS, \
                         or check Kafka)"
                    );
                } else {
                    info!(
                        flushed = queued,
                        "every accepted event was handed to Kafka before exit"
                    );
                }
                ShutdownReport {
                    undelivered,
                    left_in_spool: 0,
                }
            }
        };
        state
            .metrics
            .undelivered_at_shutdown(i64::from(report.undelivered));
        prober.abort();
        for task in background {
            task.abort();
        }
        admin_handle.stop(true).await;
        let _ = admin_task.await;
        let _ = public_task.await;
        drop(state);
        drop(embedded);
        Ok(report)
    }
}

fn bind(variable: &'static str, addr: std::net::SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        variable,
        addr,
        source,
    })
}

fn port_of(listener: &TcpListener) -> Result<u16, StartupError> {
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(StartupError::Server)
}

async fn probe(publisher: &Arc<Publisher>) {
    let publisher = publisher.clone();
    let _ = tokio::task::spawn_blocking(move || publisher.probe(PROBE_TIMEOUT)).await;
}

async fn probe_loop(publisher: Arc<Publisher>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        probe(&publisher).await;
    }
}

/// Waits for SIGTERM (Kubernetes) or SIGINT (Ctrl-C) and names it.
async fn shutdown_signal() -> &'static str {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the bridge");
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
