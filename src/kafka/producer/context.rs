//! librdkafka's callbacks on a producer's polling thread: every delivery report accounted for,
//! client errors read into the bridge's health.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tokio::sync::oneshot;
use tracing::{error, info, warn};
use uuid::Uuid;

use super::*;
use crate::internal_events::{AcknowledgedEventLost, InternalEvent};
use crate::kafka::dead_letter::{DeadLetter, Undeliverable};
use crate::metrics::DeliveryOutcome;

/// How many times one event may be moved to a rebuilt producer before it is dead-lettered.
const MAX_RESCUES: u8 = 3;
/// Travels with each record and comes back in its delivery report.
pub struct PendingDelivery {
    pub(super) event_id: Uuid,
    pub(super) enqueued_at: Instant,
    /// Someone waits for the outcome before answering (ack mode `delivered`, the spool). They
    /// own the failure: it is reported to them instead of being dead-lettered.
    pub(super) waiter: Option<oneshot::Sender<DeliveryOutcomeReport>>,
    pub(super) rescues: u8,
    /// Sent again in a batch of its own, after Kafka refused its batch as too large: a refusal
    /// now is the record's own, and final.
    pub(super) sent_alone: bool,
}

impl PendingDelivery {
    fn complete(mut self, outcome: DeliveryOutcomeReport) {
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.send(outcome);
        }
    }
}

/// Receives librdkafka's callbacks on one producer's polling thread.
pub struct DeliveryContext {
    pub(super) shared: Arc<Shared>,
    /// Set when this producer is being replaced: whatever it still holds moves to the new one.
    pub(super) retired: AtomicBool,
}

impl ClientContext for DeliveryContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        // A retired producer's counters would interleave with its successor's.
        if !self.retired.load(Ordering::Acquire) {
            self.shared.metrics.producer_statistics(&statistics);
        }
    }

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

    fn delivery(&self, result: &DeliveryResult<'_>, mut pending: Self::DeliveryOpaque) {
        let elapsed = pending.enqueued_at.elapsed();
        let shared = &self.shared;
        match result {
            Ok(message) => {
                shared
                    .metrics
                    .delivery(message.topic(), DeliveryOutcome::Delivered, elapsed);
                // A broker took the record: Kafka is reachable, whatever the last probe met (its
                // metadata request may have gone to the one broker that hangs).
                if !shared.health.is_reachable() && shared.health.mark_reachable() {
                    info!("Kafka is reachable again (a delivery succeeded)");
                    shared.metrics.set_kafka_reachable(true);
                }
                if shared.log_events {
                    let payload = String::from_utf8_lossy(crate::kafka::json_of(
                        message.payload().unwrap_or_default(),
                    ));
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
                // `max.message.bytes` limits a whole record batch, and the broker refuses the
                // batch: every record in it gets this error, though most would fit alone. Each
                // is sent once more in a batch of its own, where a refusal is its own.
                if err.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge)
                    && !pending.sent_alone
                    && !self.retired.load(Ordering::Acquire)
                    && !shared.closing.load(Ordering::Acquire)
                {
                    pending.sent_alone = true;
                    shared.metrics.sent_alone();
                    if let Err(pending) = Rescued::of(message, pending, true).hand_over(shared) {
                        self.fail(err, message, *pending, elapsed);
                    }
                    return;
                }
                let breaks_producer = err.rdkafka_error_code().is_some_and(breaks_the_producer)
                    || shared.health.fatal_error().is_some();
                if (breaks_producer || self.retired.load(Ordering::Acquire))
                    && pending.rescues < MAX_RESCUES
                {
                    shared.metrics.rescued();
                    let alone = pending.sent_alone;
                    if let Err(pending) = Rescued::of(message, pending, alone).hand_over(shared) {
                        // The bridge is stopping: nobody is left to re-send it.
                        self.fail(err, message, *pending, elapsed);
                    }
                    return;
                }
                self.fail(err, message, *pending, elapsed);
            }
        }
    }
}

impl DeliveryContext {
    /// A delivery that failed for good. If someone waits for it, they are told (nothing was
    /// acknowledged yet); otherwise it was acknowledged to ZEGO and goes to the dead-letter file.
    fn fail(
        &self,
        failure: &KafkaError,
        message: &BorrowedMessage<'_>,
        pending: PendingDelivery,
        elapsed: Duration,
    ) {
        let shared = &self.shared;
        shared
            .metrics
            .delivery(message.topic(), DeliveryOutcome::Failed, elapsed);
        if pending.waiter.is_some() {
            warn!(event_id = %pending.event_id, topic = message.topic(), error = %failure,
                "delivery failed; reported to the waiting request");
            pending.complete(Err(DeliveryFailure(failure.clone())));
            return;
        }
        let error = &failure.to_string();
        match DeadLetter::of_message(error, message) {
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
pub(super) fn never_succeeds(code: RDKafkaErrorCode) -> bool {
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
