//! The producer: enqueues events without waiting for Kafka, accounts for every delivery report
//! (`context`), saves what fails after an ack to the dead-letter file, rebuilds itself after a
//! fatal error and re-sends what the broken producer still held (`rescue`), and probes the
//! cluster for readiness (`probe`).

mod context;
mod probe;
mod rescue;

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::event::{Event, EventType};
use crate::internal_events::{AcknowledgedEventLost, InternalEvent};
use crate::kafka::dead_letter::{DeadLetter, DeadLetterFile, DeadLetterWriter, Undeliverable};
use crate::kafka::health::KafkaHealth;
use crate::kafka::record::{headers_for, owned_headers, OutgoingRecord};
use crate::kafka::schema_registry::{self, SchemaIds};
use crate::kafka::topics::TopicMap;
use crate::metrics::Metrics;

use context::{DeliveryContext, PendingDelivery};
use rescue::{drain_reports, Rescued};

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
    NotDelivered(DeliveryFailure),
    #[error("Kafka did not acknowledge the event: the producer dropped it")]
    Dropped,
    #[error("Kafka did not acknowledge the event within {0} ms")]
    DeliveryTimeout(u128),
    /// With a schema registry, a record whose type's schema was not registered at start (a
    /// spooled or dead-lettered record of a product the bridge no longer serves): it is never
    /// published unframed.
    #[error("the schema registry holds no schema of the bridge for {0}; `zego-kafka-bridge replay` registers it")]
    NoSchema(String),
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
            PublishError::NotDelivered(_) | PublishError::Dropped => "not_delivered",
            PublishError::DeliveryTimeout(_) => "delivery_timeout",
            PublishError::NoSchema(_) => "no_schema",
        }
    }
}

impl PublishError {
    /// No retry of this record can succeed: librdkafka refused it for good (too large, say).
    pub fn is_permanent(&self) -> bool {
        match self {
            PublishError::Producer(err) => err
                .rdkafka_error_code()
                .is_some_and(context::never_succeeds),
            PublishError::NotDelivered(failure) => failure.is_permanent(),
            PublishError::NoSchema(_) => true,
            _ => false,
        }
    }
}

/// Why a delivery failed, for whoever waits for it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(transparent)]
pub struct DeliveryFailure(pub KafkaError);

impl DeliveryFailure {
    /// No retry of this record can succeed (too large, invalid, not authorized); otherwise the
    /// failure is of the moment (a timeout, a broker away, a purge) and the record may be sent
    /// again.
    pub fn is_permanent(&self) -> bool {
        self.0
            .rdkafka_error_code()
            .is_some_and(context::never_succeeds)
    }
}

/// The outcome of one delivery, for whoever waits for it.
pub type DeliveryOutcomeReport = Result<(), DeliveryFailure>;

/// What every producer generation's context shares.
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<KafkaHealth>,
    dead_letters: DeadLetterWriter,
    rescue: mpsc::UnboundedSender<Rescued>,
    rebuild: Notify,
    log_events: bool,
    /// Set once the publisher flushes for shutdown: a batch refused as too large then goes to
    /// the dead-letter file (whose retrier sends each record alone at the next start) rather
    /// than to a resend nobody may be left to make.
    closing: AtomicBool,
    /// Records handed to the rescue loop and not yet to a producer.
    resending: AtomicUsize,
}

/// Settings of the publisher.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    pub topics: TopicMap,
    pub log_events: bool,
    pub dead_letter_path: std::path::PathBuf,
    /// Refuse callbacks once no broker has been reachable for this long.
    pub unavailable_after: Duration,
    /// With a schema registry: the id of each type's schema, and values in its wire format.
    pub schema_ids: Option<SchemaIds>,
}

struct Generation {
    producer: ThreadedProducer<DeliveryContext>,
    /// One record per batch, for records whose batch Kafka refused as too large; made on first
    /// need (most deployments never need it).
    alone: OnceLock<ThreadedProducer<DeliveryContext>>,
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
            closing: AtomicBool::new(false),
            resending: AtomicUsize::new(0),
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

    /// The dead-letter file this publisher writes (and [`crate::kafka::DeadLetterRetrier`]
    /// retries).
    pub fn dead_letter_file(&self) -> &Arc<DeadLetterFile> {
        self.shared.dead_letters.file()
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

    /// A record's value as it goes to Kafka: the JSON itself, or with a schema registry, framed
    /// with the id of its type's schema (`schema_id`); never unframed when that id is missing.
    fn wire_value<'a>(
        &self,
        json: &'a [u8],
        schema_id: impl FnOnce(&SchemaIds) -> Option<u32>,
        what: impl FnOnce() -> String,
    ) -> Result<Cow<'a, [u8]>, PublishError> {
        match &self.options.schema_ids {
            None => Ok(Cow::Borrowed(json)),
            Some(ids) => {
                let id = schema_id(ids).ok_or_else(|| PublishError::NoSchema(what()))?;
                Ok(Cow::Owned(schema_registry::framed(id, json)))
            }
        }
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
            sent_alone: false,
        });
        let payload = self.wire_value(
            payload,
            |ids| ids.of(event.kind),
            || event.kind.name.to_owned(),
        )?;
        self.send(
            false,
            self.options.topics.topic(event.kind),
            event.partition_key.as_deref().map(str::as_bytes),
            headers_for(event),
            &payload,
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
        let payload = self.wire_value(
            record.payload.as_bytes(),
            |ids| ids.of_record(&record.headers),
            || format!("the record of topic {}", record.topic),
        )?;
        let pending = Box::new(PendingDelivery {
            event_id: record.event_id,
            enqueued_at: Instant::now(),
            waiter: Some(waiter),
            rescues: 0,
            sent_alone: false,
        });
        self.send(
            false,
            &record.topic,
            record.key.as_deref().map(str::as_bytes),
            owned_headers(record.headers.iter().map(|(name, value)| (name, value))),
            &payload,
            pending,
        )
        .map_err(|(err, _)| err)
    }

    /// Hands a record to the producer: the generation's own, or with `alone`, its producer of
    /// one record per batch (made now if it is not yet; one that cannot be made is an error
    /// like a full queue: the caller waits and tries again).
    fn send(
        &self,
        alone: bool,
        topic: &str,
        key: Option<&[u8]>,
        headers: OwnedHeaders,
        payload: &[u8],
        pending: Box<PendingDelivery>,
    ) -> Result<(), (PublishError, Box<PendingDelivery>)> {
        let generation = self.generation.load();
        let producer = match (alone, generation.alone.get()) {
            (false, _) => &generation.producer,
            (true, Some(producer)) => producer,
            (true, None) => match create_alone(&self.config, &self.shared) {
                Ok(producer) => generation.alone.get_or_init(|| producer),
                Err(err) => return Err((PublishError::Producer(err), pending)),
            },
        };
        let mut record = BaseRecord::with_opaque_to(topic, pending)
            .payload(payload)
            .headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        producer.send(record).map_err(|(err, record)| {
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
    /// Returns once it is on disk (or logged as lost): the spool's checkpoint must not pass an
    /// event before it is safe somewhere.
    pub fn dead_letter_record(&self, record: &OutgoingRecord, error: &str) {
        self.dead_letter(record, error, |item| {
            self.shared.dead_letters.write_now(item);
        });
    }

    /// Hands an acknowledged record that could not be queued to the dead-letter writer without
    /// waiting for the disk: for callers on an HTTP worker (ZIM's verdicts), which must not
    /// fsync. It is logged and counted once written, or lost.
    pub fn dead_letter_record_later(&self, record: &OutgoingRecord, error: &str) {
        self.dead_letter(record, error, |item| {
            self.shared.dead_letters.submit_later(item);
        });
    }

    /// The letter of `record`, given to `write`; a record that makes no letter is lost, and
    /// said so.
    fn dead_letter(&self, record: &OutgoingRecord, error: &str, write: impl FnOnce(Undeliverable)) {
        match DeadLetter::of_record(error, record) {
            Ok(letter) => write(Undeliverable {
                event_id: record.event_id,
                letter,
            }),
            Err(write_error) => AcknowledgedEventLost {
                event_id: record.event_id,
                topic: &record.topic,
                error,
                write_error: &write_error,
            }
            .emit(&self.shared.metrics),
        }
    }

    /// Why the dead-letter file cannot take a letter now, or `None`.
    pub fn dead_letter_failure(&self) -> Option<String> {
        self.shared.dead_letters.file().failure()
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
        let deadline = Instant::now() + timeout;
        self.shared.closing.store(true, Ordering::Release);
        let generation = self.generation.load_full();
        let mut undelivered = 0;
        if generation.producer.flush(Timeout::After(timeout)).is_err() {
            undelivered = generation.producer.in_flight_count();
            generation
                .producer
                .purge(PurgeConfig::default().queue().inflight());
            drain_reports(&generation.producer);
        }
        // Records being sent alone reach their producer within milliseconds.
        while self.shared.resending.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stranded = self.shared.resending.load(Ordering::Acquire);
        if stranded > 0 {
            tracing::error!(
                stranded,
                "events being re-sent did not reach a producer before the shutdown deadline: \
                 they are LOST"
            );
        }
        if let Some(alone) = generation.alone.get() {
            let left = deadline.saturating_duration_since(Instant::now());
            if alone.flush(Timeout::After(left)).is_err() {
                undelivered += alone.in_flight_count();
                alone.purge(PurgeConfig::default().queue().inflight());
                drain_reports(alone);
            }
        }
        self.shared.dead_letters.close();
        undelivered
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
        alone: OnceLock::new(),
    })
}

/// The producer of records sent alone: the bridge's own settings, one record per batch.
fn create_alone(
    config: &ClientConfig,
    shared: &Arc<Shared>,
) -> Result<ThreadedProducer<DeliveryContext>, KafkaError> {
    let mut config = config.clone();
    config.set("batch.num.messages", "1").set("linger.ms", "0");
    config.create_with_context(DeliveryContext {
        shared: shared.clone(),
        retired: AtomicBool::new(false),
    })
}
