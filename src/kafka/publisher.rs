//! The producer: enqueues events without waiting for Kafka, accounts for every delivery report,
//! saves what fails after an ack to the dead-letter file, rebuilds itself after a fatal error
//! (re-sending what the broken producer still held), and probes the cluster for readiness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{SecondsFormat, Utc};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{error, info, warn};
use uuid::Uuid;

use super::dead_letter::{DeadLetter, DeadLetterFile, DeadLetterWriter, Undeliverable};
use super::health::KafkaHealth;
use super::record::{headers_for, owned_headers, OutgoingRecord};
use super::topics::TopicMap;
use crate::event::{Event, EventType};
use crate::internal_events::{
    AcknowledgedEventLost, EventDeadLettered, InternalEvent, ProducerRebuilt,
};
use crate::metrics::{DeliveryOutcome, Metrics};

/// How long to wait, after purging, for the purged events' reports: each comes back at once
/// (nothing waits for a broker), so this bounds only a stuck disk under the dead-letter file.
const PURGE_REPORT_WAIT: Duration = Duration::from_secs(30);
/// How many times one event may be moved to a rebuilt producer before it is dead-lettered.
const MAX_RESCUES: u8 = 3;

/// Why an event could not be enqueued. Nothing was accepted: the caller answers 503.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the producer queue is full")]
    QueueFull,
    #[error("Kafka has been unreachable for longer than ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS")]
    Unreachable,
    #[error("topic {0} does not exist in the Kafka cluster")]
    TopicMissing(String),
    #[error("the Kafka producer failed and is being rebuilt: {0}")]
    Fatal(String),
    #[error("Kafka refuses the bridge's connection (credentials or TLS): {0}")]
    Refused(String),
    #[error("the Kafka producer refused the event: {0}")]
    Producer(KafkaError),
    #[error("Kafka did not acknowledge the event: {0}")]
    NotDelivered(String),
    #[error("Kafka did not acknowledge the event within {0} ms")]
    DeliveryTimeout(u128),
}

impl PublishError {
    /// Label for the 503 metric.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::QueueFull => "queue_full",
            PublishError::Unreachable => "kafka_unreachable",
            PublishError::TopicMissing(_) => "topic_missing",
            PublishError::Fatal(_) => "producer_fatal",
            PublishError::Refused(_) => "kafka_refused",
            PublishError::Producer(_) => "producer_error",
            PublishError::NotDelivered(_) => "not_delivered",
            PublishError::DeliveryTimeout(_) => "delivery_timeout",
        }
    }
}

/// Why a delivery failed, for whoever waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    pub error: String,
    /// No retry of this record can succeed (too large, invalid, not authorized); otherwise the
    /// failure is of the moment (a timeout, a broker away) and the record may be sent again.
    pub permanent: bool,
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

/// The outcome of one delivery, for whoever waits for it.
pub type DeliveryOutcomeReport = Result<(), DeliveryFailure>;

/// Travels with each record and comes back in its delivery report.
pub struct PendingDelivery {
    event_id: Uuid,
    enqueued_at: Instant,
    /// Someone waits for the outcome before answering (ack mode `delivered`, the spool). They
    /// own the failure: it is reported to them instead of being dead-lettered.
    waiter: Option<oneshot::Sender<DeliveryOutcomeReport>>,
    rescues: u8,
}

impl PendingDelivery {
    fn complete(mut self, outcome: DeliveryOutcomeReport) {
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.send(outcome);
        }
    }
}

/// A record taken back from a broken producer, to be sent again by its replacement.
struct Rescued {
    topic: String,
    key: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    payload: Vec<u8>,
    pending: Box<PendingDelivery>,
}

/// What every producer generation's context shares.
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<KafkaHealth>,
    dead_letters: DeadLetterWriter,
    rescue: mpsc::UnboundedSender<Rescued>,
    rebuild: Notify,
    log_events: bool,
}

/// Receives librdkafka's callbacks on one producer's polling thread.
pub struct DeliveryContext {
    shared: Arc<Shared>,
    /// Set when this producer is being replaced: whatever it still holds moves to the new one.
    retired: AtomicBool,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                if self.shared.health.mark_unreachable() {
                    warn!(%reason, "every Kafka broker is down");
                }
            }
            Some(RDKafkaErrorCode::Fatal) => {
                error!(%reason, "the Kafka producer hit a fatal error; rebuilding it");
                self.shared.health.set_fatal_error(reason.to_owned());
                self.shared.rebuild.notify_one();
            }
            Some(code) if refuses_the_bridge(code) => {
                // Retried by librdkafka for ever, and logged once here until it works again.
                if self.shared.health.mark_refused(reason.to_owned()) {
                    error!(%reason, "Kafka refuses the bridge's connection (check the \
                        ZEGO_BRIDGE_LIBRDKAFKA_SASL_* and SSL_* settings); callbacks get 503 until it accepts it");
                }
            }
            _ => warn!(%error, %reason, "Kafka client error"),
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<PendingDelivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Self::DeliveryOpaque) {
        let elapsed = pending.enqueued_at.elapsed();
        let shared = &self.shared;
        match result {
            Ok(message) => {
                shared
                    .metrics
                    .delivery(message.topic(), DeliveryOutcome::Delivered, elapsed);
                if shared.log_events {
                    let payload = message
                        .payload()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    info!(
                        event_id = %pending.event_id,
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        %payload,
                        "event published"
                    );
                }
                pending.complete(Ok(()));
            }
            Err((err, message)) => {
                let breaks_producer = err.rdkafka_error_code().is_some_and(breaks_the_producer)
                    || shared.health.fatal_error().is_some();
                if (breaks_producer || self.retired.load(Ordering::Acquire))
                    && pending.rescues < MAX_RESCUES
                {
                    shared.metrics.rescued();
                    let rescued = Rescued {
                        topic: message.topic().to_owned(),
                        key: message.key().map(<[u8]>::to_vec),
                        headers: message.headers().map(|headers| headers.detach()),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        pending,
                    };
                    if let Err(mpsc::error::SendError(rescued)) = shared.rescue.send(rescued) {
                        // The bridge is stopping: nobody is left to re-send it.
                        self.fail(&err.to_string(), false, message, *rescued.pending, elapsed);
                    }
                    return;
                }
                let permanent = err.rdkafka_error_code().is_some_and(never_succeeds);
                self.fail(&err.to_string(), permanent, message, *pending, elapsed);
            }
        }
    }
}

impl DeliveryContext {
    /// A delivery that failed for good. If someone waits for it, they are told (nothing was
    /// acknowledged yet); otherwise it was acknowledged to ZEGO and goes to the dead-letter file.
    fn fail(
        &self,
        error: &str,
        permanent: bool,
        message: &BorrowedMessage<'_>,
        pending: PendingDelivery,
        elapsed: Duration,
    ) {
        let shared = &self.shared;
        shared
            .metrics
            .delivery(message.topic(), DeliveryOutcome::Failed, elapsed);
        if pending.waiter.is_some() {
            warn!(event_id = %pending.event_id, topic = message.topic(), %error,
                "delivery failed; reported to the waiting request");
            pending.complete(Err(DeliveryFailure {
                error: error.to_owned(),
                permanent,
            }));
            return;
        }
        match dead_letter(error, message) {
            Ok(letter) => shared.dead_letters.submit(Undeliverable {
                event_id: pending.event_id,
                letter,
            }),
            Err(write_error) => AcknowledgedEventLost {
                event_id: pending.event_id,
                topic: message.topic(),
                error,
                write_error: &write_error,
            }
            .emit(&shared.metrics),
        }
    }
}

/// Errors no retry of the same record can fix. Anything else (a timeout, a broker away, a purge)
/// is of the moment.
fn never_succeeds(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::UnsupportedForMessageFormat
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::PolicyViolation
            | RDKafkaErrorCode::InvalidTopic
    )
}

/// Errors that say Kafka will not talk to the bridge as configured: credentials or TLS.
fn refuses_the_bridge(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::SSL
    )
}

/// Errors after which this producer can deliver nothing more (its idempotence state is
/// broken): the event is not at fault and goes to the rebuilt producer. The event that trips
/// the fatal error carries the broker's own code, before librdkafka reports `Fatal`.
fn breaks_the_producer(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fatal
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::InvalidProducerIdMapping
            | RDKafkaErrorCode::ProducerFenced
    )
}

fn dead_letter(error: &str, message: &BorrowedMessage<'_>) -> std::io::Result<DeadLetter> {
    let payload = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
    let event = RawValue::from_string(payload).map_err(std::io::Error::other)?;
    let headers: BTreeMap<String, String> = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| {
                    (
                        header.key.to_owned(),
                        String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DeadLetter {
        failed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        error: error.to_owned(),
        topic: message.topic().to_owned(),
        key: message
            .key()
            .map(|key| String::from_utf8_lossy(key).into_owned()),
        headers,
        event,
    })
}

/// Settings of the publisher.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    pub topics: TopicMap,
    pub log_events: bool,
    pub dead_letter_path: std::path::PathBuf,
    /// Refuse callbacks once no broker has been reachable for this long.
    pub unavailable_after: Duration,
}

struct Generation {
    producer: ThreadedProducer<DeliveryContext>,
}

impl Generation {
    fn context(&self) -> &DeliveryContext {
        self.producer.context()
    }
}

pub struct Publisher {
    generation: ArcSwap<Generation>,
    config: ClientConfig,
    options: PublisherOptions,
    shared: Arc<Shared>,
    rescued: Mutex<Option<mpsc::UnboundedReceiver<Rescued>>>,
    rebuilds: AtomicU64,
}

impl Publisher {
    pub fn new(
        config: &ClientConfig,
        options: PublisherOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self, KafkaError> {
        let (rescue, rescued) = mpsc::unbounded_channel();
        let dead_letters = DeadLetterWriter::start(
            Arc::new(DeadLetterFile::new(options.dead_letter_path.clone())),
            metrics.clone(),
        );
        let shared = Arc::new(Shared {
            metrics,
            health: Arc::new(KafkaHealth::default()),
            dead_letters,
            rescue,
            rebuild: Notify::new(),
            log_events: options.log_events,
        });
        let generation = create_generation(config, &shared)?;
        Ok(Publisher {
            generation: ArcSwap::from_pointee(generation),
            config: config.clone(),
            options,
            shared,
            rescued: Mutex::new(Some(rescued)),
            rebuilds: AtomicU64::new(0),
        })
    }

    /// Starts the tasks that rebuild a failed producer and re-send what it held. Call once,
    /// from a Tokio runtime.
    pub fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(self.clone().rebuild_loop())];
        if let Some(rescued) = self.rescued.lock().expect("rescue lock").take() {
            tasks.push(tokio::spawn(self.clone().rescue_loop(rescued)));
        }
        tasks
    }

    pub fn health(&self) -> &Arc<KafkaHealth> {
        &self.shared.health
    }

    pub fn topics(&self) -> &TopicMap {
        &self.options.topics
    }

    /// How many times the producer was rebuilt after a fatal error.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }

    /// False once no broker has been reachable for `unavailable_after`.
    pub fn kafka_available(&self) -> bool {
        self.shared
            .health
            .is_available(self.options.unavailable_after)
    }

    /// Whether an event of this type can be taken now. `needs_kafka` is false when the event
    /// goes to a local spool first and Kafka may be away for a while.
    pub fn check_accepting(&self, kind: &EventType, needs_kafka: bool) -> Result<(), PublishError> {
        let health = &self.shared.health;
        let topic = self.options.topics.topic(kind);
        if health.is_topic_missing(topic) {
            return Err(PublishError::TopicMissing(topic.to_string()));
        }
        if let Some(reason) = health.refusal() {
            return Err(PublishError::Refused(reason));
        }
        if needs_kafka {
            if let Some(reason) = health.fatal_error() {
                return Err(PublishError::Fatal(reason));
            }
            if !self.kafka_available() {
                return Err(PublishError::Unreachable);
            }
        }
        Ok(())
    }

    /// Enqueues the event. `Ok` means librdkafka holds it and will deliver it or report why
    /// not: to `waiter` if given, else (it was acknowledged) to the dead-letter file.
    pub fn publish(
        &self,
        event: &Event<'_>,
        payload: &[u8],
        waiter: Option<oneshot::Sender<DeliveryOutcomeReport>>,
    ) -> Result<(), PublishError> {
        let pending = Box::new(PendingDelivery {
            event_id: event.id,
            enqueued_at: Instant::now(),
            waiter,
            rescues: 0,
        });
        self.send(
            self.options.topics.topic(event.kind),
            event.partition_key.as_deref().map(str::as_bytes),
            headers_for(event),
            payload,
            pending,
        )
        .map_err(|(err, _)| err)
    }

    /// Enqueues an already-encoded record (from the spool or a replay).
    pub fn publish_record(
        &self,
        record: &OutgoingRecord,
        waiter: oneshot::Sender<DeliveryOutcomeReport>,
    ) -> Result<(), PublishError> {
        let pending = Box::new(PendingDelivery {
            event_id: record.event_id,
            enqueued_at: Instant::now(),
            waiter: Some(waiter),
            rescues: 0,
        });
        self.send(
            &record.topic,
            record.key.as_deref().map(str::as_bytes),
            owned_headers(&record.headers),
            record.payload.as_bytes(),
            pending,
        )
        .map_err(|(err, _)| err)
    }

    fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        headers: OwnedHeaders,
        payload: &[u8],
        pending: Box<PendingDelivery>,
    ) -> Result<(), (PublishError, Box<PendingDelivery>)> {
        let generation = self.generation.load();
        let mut record = BaseRecord::with_opaque_to(topic, pending)
            .payload(payload)
            .headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        generation.producer.send(record).map_err(|(err, record)| {
            let error = match err.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => PublishError::QueueFull,
                Some(RDKafkaErrorCode::Fatal) => {
                    self.shared.rebuild.notify_one();
                    PublishError::Fatal(err.to_string())
                }
                _ => PublishError::Producer(err),
            };
            (error, record.delivery_opaque)
        })
    }

    /// Writes an acknowledged record that failed for good to the dead-letter file (used by the
    /// spool, which owns its records' failures).
    pub fn dead_letter_record(&self, record: &OutgoingRecord, error: &str) {
        let shared = &self.shared;
        let letter = RawValue::from_string(record.payload.clone()).map(|event| DeadLetter {
            failed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            error: error.to_owned(),
            topic: record.topic.clone(),
            key: record.key.clone(),
            headers: record.headers.iter().cloned().collect(),
            event,
        });
        let file = shared.dead_letters.file();
        match letter
            .map_err(std::io::Error::other)
            .and_then(|letter| file.write(&letter))
        {
            Ok(()) => EventDeadLettered {
                event_id: record.event_id,
                topic: &record.topic,
                error,
                file: file.path(),
            }
            .emit(&shared.metrics),
            Err(write_error) => AcknowledgedEventLost {
                event_id: record.event_id,
                topic: &record.topic,
                error,
                write_error: &write_error,
            }
            .emit(&shared.metrics),
        }
    }

    /// Events enqueued but not yet acknowledged by Kafka.
    pub fn queue_depth(&self) -> i32 {
        self.generation.load().producer.in_flight_count()
    }

    /// Waits up to `timeout` for every queued event to be delivered (or to fail). Returns how
    /// many were still undelivered when the time ran out; those are purged, which reports each
    /// through the delivery callback: each is logged with its id and dead-lettered. Returns only
    /// once every report was handled and every dead letter is on disk.
    pub fn flush(&self, timeout: Duration) -> i32 {
        let generation = self.generation.load_full();
        let mut undelivered = 0;
        if generation.producer.flush(Timeout::After(timeout)).is_err() {
            undelivered = generation.producer.in_flight_count();
            generation
                .producer
                .purge(PurgeConfig::default().queue().inflight());
            drain_reports(&generation.producer);
        }
        self.shared.dead_letters.close();
        undelivered
    }

    async fn rebuild_loop(self: Arc<Self>) {
        loop {
            self.shared.rebuild.notified().await;
            if self.shared.health.fatal_error().is_none() {
                // A stale notification: nothing failed.
                if self
                    .generation
                    .load()
                    .producer
                    .client()
                    .fatal_error()
                    .is_none()
                {
                    continue;
                }
            }
            let publisher = self.clone();
            let rebuilt = tokio::task::spawn_blocking(move || publisher.rebuild()).await;
            if !matches!(rebuilt, Ok(Ok(()))) {
                error!(
                    ?rebuilt,
                    "could not rebuild the Kafka producer; retrying in 1 s"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.shared.rebuild.notify_one();
            }
        }
    }

    /// Replaces the producer. Whatever the old one still held comes back through its delivery
    /// callback (it is marked retired, then purged) and is sent again by the new one.
    fn rebuild(&self) -> Result<(), KafkaError> {
        let fresh = create_generation(&self.config, &self.shared)?;
        let old = self.generation.swap(Arc::new(fresh));
        old.context().retired.store(true, Ordering::Release);
        old.producer
            .purge(PurgeConfig::default().queue().inflight());
        drain_reports(&old.producer);
        self.shared.health.clear_fatal_error();
        let rebuilds = self.rebuilds.fetch_add(1, Ordering::Relaxed) + 1;
        ProducerRebuilt { rebuilds }.emit(&self.shared.metrics);
        Ok(())
    }

    async fn rescue_loop(self: Arc<Self>, mut rescued: mpsc::UnboundedReceiver<Rescued>) {
        while let Some(mut record) = rescued.recv().await {
            record.pending.rescues += 1;
            let mut pending = record.pending;
            loop {
                let headers = record.headers.clone().unwrap_or_default();
                match self.send(
                    &record.topic,
                    record.key.as_deref(),
                    headers,
                    &record.payload,
                    pending,
                ) {
                    Ok(()) => break,
                    Err((_, returned)) => {
                        // Queue full or the replacement is not ready yet: wait, keep the event.
                        pending = returned;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
    }

    /// Asks the cluster for its metadata and records reachability, missing topics and a fatal
    /// producer error. Blocks for up to `timeout`: call from a blocking thread.
    pub fn probe(&self, timeout: Duration) {
        let generation = self.generation.load_full();
        let health = &self.shared.health;
        let metrics = &self.shared.metrics;
        if let Some((code, reason)) = generation.producer.client().fatal_error() {
            if health.fatal_error().is_none() {
                error!(?code, %reason, "the Kafka producer hit a fatal error; rebuilding it");
            }
            health.set_fatal_error(format!("{code:?}: {reason}"));
            self.shared.rebuild.notify_one();
        }
        match generation
            .producer
            .client()
            .fetch_metadata(None, Timeout::After(timeout))
        {
            Ok(metadata) => {
                if health.mark_reachable() {
                    info!(brokers = metadata.brokers().len(), "Kafka is reachable");
                }
                let present: BTreeSet<&str> = metadata
                    .topics()
                    .iter()
                    .filter(|topic| topic.error().is_none())
                    .map(|topic| topic.name())
                    .collect();
                let wanted = self.options.topics.distinct();
                let missing: BTreeSet<String> = wanted
                    .iter()
                    .filter(|topic| !present.contains(topic.as_str()))
                    .cloned()
                    .collect();
                for topic in &wanted {
                    metrics.set_topic_missing(topic, missing.contains(topic));
                }
                if health.set_missing_topics(missing.clone()) {
                    if missing.is_empty() {
                        info!("every configured topic exists");
                    } else {
                        let list: Vec<&str> = missing.iter().map(String::as_str).collect();
                        warn!(
                            missing = %list.join(", "),
                            "configured topics do not exist and the bridge does not create them; \
                             callbacks for them get 503 until they are created"
                        );
                    }
                }
            }
            Err(err) => {
                if health.mark_unreachable() {
                    warn!(error = %err, "Kafka is unreachable");
                }
            }
        }
        metrics.set_kafka_reachable(health.is_reachable());
    }
}

/// Waits until the producer has handed every delivery report to its callback: librdkafka counts
/// a message in `in_flight_count` until its report was served. A producer dropped before that
/// loses the events whose reports it still held.
fn drain_reports(producer: &ThreadedProducer<DeliveryContext>) {
    let started = Instant::now();
    while producer.in_flight_count() > 0 {
        if started.elapsed() > PURGE_REPORT_WAIT {
            error!(
                remaining = producer.in_flight_count(),
                "delivery reports of purged events did not come back: those events are LOST"
            );
            return;
        }
        let _ = producer.flush(Timeout::After(Duration::from_millis(100)));
    }
}

fn create_generation(
    config: &ClientConfig,
    shared: &Arc<Shared>,
) -> Result<Generation, KafkaError> {
    let context = DeliveryContext {
        shared: shared.clone(),
        retired: AtomicBool::new(false),
    };
    Ok(Generation {
        producer: config.create_with_context(context)?,
    })
}
