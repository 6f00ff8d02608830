//! Wiring: builds the producer and both HTTP servers from [`Settings`], runs them, and shuts
//! them down in an order that loses nothing it can save.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::error::DispatchError;
use actix_http::HttpService;
use actix_service::{fn_service, map_config, ServiceFactory, ServiceFactoryExt as _};
use actix_web::dev::{AppConfig, Server, ServiceRequest, ServiceResponse};
use actix_web::rt::net::TcpStream;
use actix_web::{web, App, HttpServer};
use rdkafka::error::KafkaError;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::configuration::{KafkaTarget, Settings};
use crate::ingest::{acknowledger, Pipeline, PipelineSettings, Readiness};
use crate::kafka::{
    producer_config, DeadLetterRetrier, EmbeddedCluster, ProbeSchedule, Publisher, PublisherOptions,
};
use crate::metrics::Metrics;
use crate::routes::{self, BodyLimits, RequestLogging};
use crate::secrets::{LiveSecrets, SecretsWatcher};
use crate::stack_replies::StackReplies;

pub use crate::ingest::ShutdownReport;

/// How often a bridge that started with Kafka away tries to begin sharing used signatures.
const SHARING_RETRY_EVERY: Duration = Duration::from_secs(10);
/// How often the topics' `max.message.bytes` are read again.
const TOPIC_LIMITS_EVERY: Duration = Duration::from_secs(60);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Partitions of each topic of the embedded cluster.
const EMBEDDED_PARTITIONS: i32 = 3;

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
    Producer(crate::kafka::PropertyError),
    #[error("cannot start the embedded Kafka cluster: {0}")]
    Embedded(KafkaError),
    #[error("cannot start the HTTP server: {0}")]
    Server(std::io::Error),
    #[error("cannot write the dead-letter file {path} (set by ZEGO_BRIDGE_DEAD_LETTER_PATH): {source}; acknowledged events that Kafka refuses would be lost")]
    DeadLetter {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot own the dead-letter file (ZEGO_BRIDGE_DEAD_LETTER_PATH): {0}")]
    DeadLetterOwned(crate::kafka::DeadLetterLockError),
    #[error(transparent)]
    Spool(#[from] acknowledger::SpoolOpenError),
    #[error(transparent)]
    SchemaRegistry(crate::kafka::RegistryError),
}

/// Stops a running [`Application`] as SIGTERM would.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.notify_one();
    }
}

pub struct Application {
    public_port: u16,
    admin_port: u16,
    public_server: Server,
    admin_server: Server,
    readiness: Arc<Readiness>,
    acknowledger: Arc<dyn acknowledger::Acknowledger>,
    publisher: Arc<Publisher>,
    metrics: Arc<Metrics>,
    shutdown_timeout: Duration,
    shutdown_report_wait: Duration,
    probe_interval: Duration,
    stop: Arc<Notify>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// With ZEGO_BRIDGE_CALLBACK_SECRETS_FILE: reads it again when it changes.
    secrets_watcher: Option<SecretsWatcher>,
    dead_letter_retry_interval: Option<Duration>,
    // Declared last so it is dropped last: the producer must go before the cluster it talks to.
    embedded: Option<EmbeddedCluster>,
    /// Held until the process ends: no replay or second bridge takes the dead-letter file.
    dead_letter_lock: crate::kafka::DeadLetterLock,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let started = Instant::now();
        let metrics = Arc::new(Metrics::new());
        let event_types: Vec<&str> = crate::event::catalog::ALL
            .iter()
            .map(|kind| kind.name)
            .collect();
        metrics.initialize_series(&settings.topics.distinct(), &event_types);
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
        if embedded.is_some() && settings.uses_demo_secret() {
            warn!(
                "ZEGO_BRIDGE_CALLBACK_SECRETS is not set: accepting callbacks signed with the demo \
                 secret `{}` (what `zego-kafka-bridge send` uses by default)",
                crate::configuration::DEMO_SECRET
            );
        }
        let config = producer_config(
            &bootstrap,
            settings.ack_mode.producer_defaults(),
            &settings.librdkafka,
        );
        // A schema registry's wire format puts 5 bytes before each value.
        let event_sizes = Arc::new(
            crate::kafka::EventSizeLimits::new(&config).with_value_prefix(
                if settings.schema_registry.is_some() {
                    5
                } else {
                    0
                },
            ),
        );
        if let Some(capacity) = crate::kafka::queue_capacity(&config) {
            metrics.set_queue_capacity(capacity);
        }
        crate::kafka::DeadLetterFile::new(&settings.dead_letter_path)
            .check_writable()
            .map_err(|source| StartupError::DeadLetter {
                path: settings.dead_letter_path.clone(),
                source,
            })?;
        let dead_letter_lock = crate::kafka::DeadLetterLock::acquire(&settings.dead_letter_path)
            .map_err(StartupError::DeadLetterOwned)?;
        // Before the publisher starts: a spool left by the last run drains at once, framed.
        let schema_ids = match &settings.schema_registry {
            Some(registry) => Some(
                crate::kafka::register_topics(registry, &settings.topics)
                    .await
                    .map_err(StartupError::SchemaRegistry)?,
            ),
            None => None,
        };
        let options = PublisherOptions {
            topics: settings.topics.clone(),
            log_events: settings.log_events,
            dead_letter_path: settings.dead_letter_path.clone(),
            unavailable_after: settings.unavailable_after,
            schema_ids,
        };
        let publisher = Arc::new(Publisher::new(&config, options, metrics.clone()).map_err(
            |err| {
                StartupError::Producer(crate::kafka::redacted_config_error(
                    &err,
                    &settings.librdkafka,
                ))
            },
        )?);
        let mut background = publisher.start();
        let acknowledger =
            acknowledger::for_mode(&settings.ack_mode, publisher.clone(), metrics.clone())?;
        // One probe before serving, so readiness and missing topics are known from the start.
        probe(&publisher).await;
        // And the topics' own size limits (the embedded cluster keeps Kafka's defaults).
        if embedded.is_none() {
            background.push(learn_topic_limits(
                &bootstrap,
                &settings,
                event_sizes.clone(),
                metrics.clone(),
            ));
        }

        let live_secrets = Arc::new(LiveSecrets::new(settings.secrets.clone()));
        metrics.set_callback_secrets(settings.secrets.count());
        metrics.set_max_clock_skew(settings.max_clock_skew_secs);
        let secrets_watcher = settings
            .secrets_file
            .clone()
            .map(|path| SecretsWatcher::new(path, live_secrets.clone(), metrics.clone()));
        let readiness = Arc::new(Readiness::new(acknowledger.clone()));
        let pipeline = web::Data::new(Pipeline::new(
            PipelineSettings {
                secrets: live_secrets.clone(),
                max_clock_skew_secs: settings.max_clock_skew_secs,
                dedup_capacity: settings.dedup_capacity,
                event_sizes,
                retry_after_secs: settings.retry_after_secs,
                zim_verdict: settings.zim_verdict,
                products: settings.products,
            },
            acknowledger.clone(),
            readiness.clone(),
            metrics.clone(),
        ));
        // Before serving: the signatures the deployment's replicas took in the last window,
        // this process's previous life included, are known before the first callback. The
        // embedded cluster has one process and keeps nothing: nothing to share.
        // With Kafka away, the start does not wait for it: sharing begins once it is back.
        let window = crate::ingest::signature_window(settings.max_clock_skew_secs);
        if let (None, Some(window)) = (&embedded, window) {
            let mut sharing = crate::kafka::SharingSettings {
                brokers: bootstrap.clone(),
                properties: settings.librdkafka.clone(),
                topic: settings.topics.used_signatures().to_owned(),
                window,
                report_failure: true,
            };
            let (recent, metrics) = (pipeline.recent_callbacks(), metrics.clone());
            let started = if publisher.health().is_reachable() {
                crate::kafka::start_sharing(sharing.clone(), recent.clone(), metrics.clone()).await
            } else {
                None
            };
            if let Some((log, follow)) = started {
                pipeline.share_signatures_through(log);
                background.push(tokio::spawn(follow));
            } else {
                // Kafka away, or the topic missing: tried again until it works, without
                // holding the start (the pod serves on its own memory meanwhile, gauge at 0).
                let pipeline = pipeline.clone();
                background.push(tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(SHARING_RETRY_EVERY).await;
                        let started = crate::kafka::start_sharing(
                            sharing.clone(),
                            recent.clone(),
                            metrics.clone(),
                        )
                        .await;
                        if let Some((log, follow)) = started {
                            pipeline.share_signatures_through(log);
                            return follow.await;
                        }
                        sharing.report_failure = false;
                    }
                }));
            }
        }
        let body_limits = web::Data::new(BodyLimits::new(
            settings.max_body_bytes,
            settings.http_limits.request_timeout,
            settings.http_limits.max_buffered_body_bytes,
        ));

        let request_logging = Arc::new(RequestLogging::new(
            settings.trusted_proxies.clone(),
            settings.access_log,
        ));
        let stack_replies = Arc::new(StackReplies::new(
            metrics.clone(),
            request_logging.clone(),
            settings.http_limits.request_timeout,
            settings.http_limits.max_buffered_head_bytes,
            settings.retry_after_secs,
        ));

        let public_listener = bind("ZEGO_BRIDGE_LISTEN_ADDR", settings.listen_addr)?;
        let admin_listener = bind("ZEGO_BRIDGE_ADMIN_ADDR", settings.admin_addr)?;
        let public_port = port_of(&public_listener)?;
        let admin_port = port_of(&admin_listener)?;
        let drain_secs = settings.shutdown_timeout.as_secs().max(1);

        let public_server = public_server(
            public_listener,
            &settings,
            drain_secs,
            stack_replies,
            move || {
                App::new()
                    .app_data(pipeline.clone())
                    .app_data(body_limits.clone())
                    .app_data(web::Data::from(request_logging.clone()))
                    .configure(routes::configure_public)
            },
        )?;

        let admin_readiness = web::Data::from(readiness.clone());
        let admin_metrics = web::Data::from(metrics.clone());
        let admin_server = HttpServer::new(move || {
            App::new()
                .app_data(admin_readiness.clone())
                .app_data(admin_metrics.clone())
                .configure(routes::configure_admin)
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
            "zego-kafka-bridge listening: callbacks on POST {}, metrics and probes on the admin port",
            routes::CALLBACKS_PATH
        );
        Ok(Application {
            public_port,
            admin_port,
            public_server,
            admin_server,
            readiness,
            acknowledger,
            publisher,
            metrics,
            shutdown_timeout: settings.shutdown_timeout,
            shutdown_report_wait: settings.shutdown_report_wait,
            probe_interval: settings.probe_interval,
            stop: Arc::new(Notify::new()),
            background,
            secrets_watcher,
            dead_letter_retry_interval: settings.dead_letter_retry_interval,
            embedded,
            dead_letter_lock,
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
            readiness,
            acknowledger,
            publisher,
            metrics,
            shutdown_timeout,
            shutdown_report_wait,
            probe_interval,
            stop,
            mut background,
            secrets_watcher,
            dead_letter_retry_interval,
            embedded,
            dead_letter_lock,
            ..
        } = self;
        if let Some(watcher) = secrets_watcher {
            background.push(tokio::spawn(watcher.run()));
        }
        if let Some(interval) = dead_letter_retry_interval {
            let retrier = DeadLetterRetrier::new(publisher.clone(), metrics.clone(), interval);
            background.push(tokio::spawn(retrier.run()));
        }
        let public_handle = public_server.handle();
        let admin_handle = admin_server.handle();
        let mut public_task = tokio::spawn(public_server);
        let admin_task = tokio::spawn(admin_server);
        let prober = tokio::spawn(probe_loop(publisher.clone(), probe_interval));

        tokio::select! {
            signal = shutdown_signal() => info!(signal, "shutting down"),
            () = stop.notified() => info!("shutting down on request"),
            result = &mut public_task => {
                error!(?result, "the public HTTP server stopped by itself");
            }
        }
        let deadline = Instant::now() + shutdown_timeout;
        readiness.begin_shutdown();
        metrics.set_ready(false);
        // Callbacks in progress finish (and are acknowledged or refused) before the mode
        // shuts down.
        public_handle.stop(true).await;
        let report = acknowledger.shut_down(deadline).await;
        // Nothing may touch the producer or the dead-letter file once they are shut down,
        // however long the wait below.
        prober.abort();
        for task in background {
            task.abort();
        }
        let mut report = report;
        report.dead_letters_waiting = publisher.dead_letter_file().waiting_letters();
        let not_in_kafka = report.not_in_kafka();
        metrics.undelivered_at_shutdown(i64::try_from(not_in_kafka).unwrap_or(i64::MAX));
        if not_in_kafka > 0 {
            wait_for_a_scrape(&metrics, not_in_kafka, shutdown_report_wait).await;
        }
        admin_handle.stop(true).await;
        let _ = admin_task.await;
        let _ = public_task.await;
        // The producer must go before the embedded cluster it talks to.
        drop((readiness, acknowledger, publisher));
        drop(embedded);
        drop(dead_letter_lock);
        Ok(report)
    }
}

/// Keeps the admin port open until Prometheus has scraped the count of events this shutdown
/// left undelivered, or `wait` runs out. Without it the gauge was set and the port closed in the
/// same instant: no scrape ever saw it (127 scrapes 10 ms apart all read 0), and in a pod whose
/// volume goes with it the loss was silent to the monitoring.
async fn wait_for_a_scrape(metrics: &Metrics, undelivered: u64, wait: Duration) {
    if wait.is_zero() {
        return;
    }
    let target = i64::try_from(undelivered).unwrap_or(i64::MAX);
    let deadline = Instant::now() + wait;
    info!(
        undelivered,
        wait_ms = wait.as_millis() as u64,
        "waiting for a scrape of /metrics to carry zego_bridge_undelivered_at_shutdown \
         (a second SIGTERM or Ctrl-C exits now)"
    );
    let scraped = async {
        // A scrape that carried the count; its answer is then sent before the admin server's
        // graceful stop lets the process go.
        while metrics.undelivered_scraped() < target {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = scraped => {}
        () = tokio::time::sleep_until(deadline.into()) => warn!(
            undelivered,
            "no scrape of /metrics came before ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS ran out: \
             only the log and the termination message report these events"
        ),
        signal = shutdown_signal() => info!(signal, "not waiting for a scrape any longer"),
    }
}

/// The public listener: what `HttpServer::listen` assembles, by hand, so that each connection
/// is wrapped in [`JsonStackReplies`](crate::stack_replies::JsonStackReplies) before actix-http
/// serves it.
fn public_server<F, T>(
    listener: TcpListener,
    settings: &Settings,
    drain_secs: u64,
    stack_replies: Arc<StackReplies>,
    app: F,
) -> Result<Server, StartupError>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
{
    let local_addr = listener.local_addr().map_err(StartupError::Server)?;
    let limits = settings.http_limits;
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let server = builder
        .workers(settings.http_workers)
        .max_concurrent_connections(limits.max_connections_per_worker)
        .disable_signals()
        .shutdown_timeout(drain_secs)
        .listen("public", listener, move || {
            let shutdown = shutdown.clone();
            let http = HttpService::build()
                .keep_alive(limits.keep_alive)
                .client_request_timeout(limits.request_timeout)
                // A connection refused mid-body (413, 503 past the body budget) is closed at
                // once rather than lingering with its buffers for the default second.
                .client_disconnect_timeout(Duration::from_millis(100))
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .local_addr(local_addr)
                // The routes build no URLs: the host and address this config would give them
                // are never read.
                .h1(map_config(app(), |_| AppConfig::default()));
            let stack_replies = stack_replies.clone();
            fn_service(move |stream: TcpStream| {
                let peer = stream.peer_addr().ok();
                let wrapped = stack_replies.wrap(stream, peer.map(|peer| peer.ip()));
                std::future::ready(Ok::<_, DispatchError>((wrapped, peer)))
            })
            .and_then(http)
        })
        .map_err(StartupError::Server)?
        .run();
    Ok(server)
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

/// Learns the topics' `max.message.bytes` within a few seconds, then every minute in the task
/// returned. Serving does not wait for it: until then, only the producer's limit is applied.
fn learn_topic_limits(
    bootstrap: &str,
    settings: &Settings,
    event_sizes: Arc<crate::kafka::EventSizeLimits>,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    let learner = match crate::kafka::TopicLimitLearner::new(
        bootstrap,
        &settings.librdkafka,
        settings.topics.clone(),
        event_sizes,
        metrics,
    ) {
        Ok(learner) => learner,
        Err(err) => {
            warn!(error = %err, "cannot read the topics' max.message.bytes: only the producer's limit applies");
            return tokio::spawn(async {});
        }
    };
    tokio::spawn(async move {
        match learner.learn().await {
            Ok(topics) => info!(topics, "learned the topics' max.message.bytes"),
            Err(error) => {
                warn!(%error, "could not read the topics' max.message.bytes yet; trying again every minute")
            }
        }
        learner.run(TOPIC_LIMITS_EVERY).await;
    })
}

async fn probe(publisher: &Arc<Publisher>) {
    let publisher = publisher.clone();
    let _ = tokio::task::spawn_blocking(move || publisher.probe(PROBE_TIMEOUT)).await;
}

async fn probe_loop(publisher: Arc<Publisher>, interval: Duration) {
    let mut schedule = ProbeSchedule::new(interval);
    let mut due = schedule.after_probe(publisher.health());
    let mut probed = Instant::now();
    loop {
        tokio::time::sleep(schedule.tick()).await;
        // librdkafka can find every broker down between two probes: then at once.
        if probed.elapsed() >= due || !publisher.health().is_reachable() {
            probe(&publisher).await;
            probed = Instant::now();
            due = schedule.after_probe(publisher.health());
        }
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
