//! The producer: enqueues events without waiting for Kafka, accounts for every delivery report,
//! and probes the cluster for readiness.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use tracing::{error, info, warn};
use uuid::Uuid;

use super::health::KafkaHealth;
use super::record::headers_for;
use super::topics::TopicMap;
use crate::event::Event;
use crate::metrics::{DeliveryOutcome, Metrics};

/// How long to wait, after purging at shutdown, for the purged events' reports to be logged.
const PURGE_REPORT_WAIT: Duration = Duration::from_secs(1);

/// Why an event could not be enqueued. Nothing was accepted: the caller answers 503.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the producer queue is full")]
    QueueFull,
    #[error("Kafka is unreachable")]
    Unreachable,
    #[error("topic {0} does not exist in the Kafka cluster")]
    TopicMissing(String),
    #[error("the Kafka producer has failed: {0}")]
    Fatal(String),
    #[error("the Kafka producer refused the event: {0}")]
    Producer(KafkaError),
}

impl PublishError {
    /// Label for the 503 metric.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::QueueFull => "queue_full",
            PublishError::Unreachable => "kafka_unreachable",
            PublishError::TopicMissing(_) => "topic_missing",
            PublishError::Fatal(_) => "producer_fatal",
            PublishError::Producer(_) => "producer_error",
        }
    }
}

/// Travels with each record and comes back in its delivery report.
pub struct PendingDelivery {
    event_id: Uuid,
    enqueued_at: Instant,
}

/// Receives librdkafka's callbacks on the producer's polling thread.
pub struct DeliveryContext {
    metrics: Arc<Metrics>,
    health: Arc<KafkaHealth>,
    log_events: bool,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            if self.health.set_reachable(false) {
                warn!(%reason, "every Kafka broker is down; refusing callbacks with 503");
            }
            self.metrics.set_kafka_reachable(false);
        } else {
            warn!(%error, %reason, "Kafka client error");
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<PendingDelivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Self::DeliveryOpaque) {
        let elapsed = pending.enqueued_at.elapsed();
        match result {
            Ok(message) => {
                self.metrics
                    .delivery(message.topic(), DeliveryOutcome::Delivered, elapsed);
                if self.log_events {
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
            }
            Err((err, message)) => {
                self.metrics
                    .delivery(message.topic(), DeliveryOutcome::Failed, elapsed);
                error!(
                    event_id = %pending.event_id,
                    topic = message.topic(),
                    error = %err,
                    waited_ms = elapsed.as_millis() as u64,
                    "event acknowledged to ZEGO could not be delivered to Kafka: it is lost"
                );
            }
        }
    }
}

pub struct Publisher {
    producer: ThreadedProducer<DeliveryContext>,
    topics: TopicMap,
    health: Arc<KafkaHealth>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    pub fn new(
        config: &ClientConfig,
        topics: TopicMap,
        metrics: Arc<Metrics>,
        log_events: bool,
    ) -> Result<Self, KafkaError> {
        let health = Arc::new(KafkaHealth::default());
        let context = DeliveryContext {
            metrics: metrics.clone(),
            health: health.clone(),
            log_events,
        };
        let producer: ThreadedProducer<DeliveryContext> = config.create_with_context(context)?;
        Ok(Publisher {
            producer,
            topics,
            health,
            metrics,
        })
    }

    pub fn health(&self) -> &Arc<KafkaHealth> {
        &self.health
    }

    pub fn topics(&self) -> &TopicMap {
        &self.topics
    }

    /// Enqueues the event. `Ok` means librdkafka holds it and will deliver it or report why not.
    pub fn publish(&self, event: &Event<'_>, payload: &[u8]) -> Result<(), PublishError> {
        if let Some(reason) = self.health.fatal_error() {
            return Err(PublishError::Fatal(reason));
        }
        if !self.health.is_reachable() {
            return Err(PublishError::Unreachable);
        }
        let topic = self.topics.topic(event.kind);
        if self.health.is_topic_missing(topic) {
            return Err(PublishError::TopicMissing(topic.to_string()));
        }
        let pending = Box::new(PendingDelivery {
            event_id: event.id,
            enqueued_at: Instant::now(),
        });
        let mut record = BaseRecord::with_opaque_to(topic, pending)
            .payload(payload)
            .headers(headers_for(event));
        if let Some(key) = event.partition_key.as_deref() {
            record = record.key(key);
        }
        self.producer
            .send(record)
            .map_err(|(err, _record)| match err.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => PublishError::QueueFull,
                Some(RDKafkaErrorCode::Fatal) => PublishError::Fatal(err.to_string()),
                _ => PublishError::Producer(err),
            })
    }

    /// Events enqueued but not yet acknowledged by Kafka.
    pub fn queue_depth(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for every queued event to be delivered (or to fail). Returns how
    /// many were still undelivered when the time ran out; those are purged, which reports each
    /// through the delivery callback, so each is counted as failed and logged with its id.
    pub fn flush(&self, timeout: Duration) -> i32 {
        if self.producer.flush(Timeout::After(timeout)).is_ok() {
            return 0;
        }
        let undelivered = self.producer.in_flight_count();
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        // Purged messages come back as delivery reports; give the polling thread time to run them.
        let _ = self.producer.flush(Timeout::After(PURGE_REPORT_WAIT));
        undelivered
    }

    /// Asks the cluster for its metadata and records reachability, missing topics and a fatal
    /// producer error. Blocks for up to `timeout`: call from a blocking thread.
    pub fn probe(&self, timeout: Duration) {
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            let reason = format!("{code:?}: {reason}");
            if self.health.fatal_error().is_none() {
                error!(%reason, "the Kafka producer hit a fatal error; refusing callbacks");
            }
            self.health.set_fatal_error(reason);
        }
        match self
            .producer
            .client()
            .fetch_metadata(None, Timeout::After(timeout))
        {
            Ok(metadata) => {
                if !self.health.set_reachable(true) {
                    info!(brokers = metadata.brokers().len(), "Kafka is reachable");
                }
                self.metrics.set_kafka_reachable(true);
                let present: BTreeSet<&str> = metadata
                    .topics()
                    .iter()
                    .filter(|topic| topic.error().is_none())
                    .map(|topic| topic.name())
                    .collect();
                let wanted = self.topics.distinct();
                let missing: BTreeSet<String> = wanted
                    .iter()
                    .filter(|topic| !present.contains(topic.as_str()))
                    .cloned()
                    .collect();
                for topic in &wanted {
                    self.metrics
                        .set_topic_missing(topic, missing.contains(topic));
                }
                if self.health.set_missing_topics(missing.clone()) {
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
                if self.health.set_reachable(false) {
                    warn!(error = %err, "Kafka is unreachable; refusing callbacks with 503");
                }
                self.metrics.set_kafka_reachable(false);
            }
        }
    }
}
