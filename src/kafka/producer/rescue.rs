//! A producer whose idempotence state broke is replaced; what it still held is taken back and
//! sent again by its replacement.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{Producer, PurgeConfig, ThreadedProducer};
use rdkafka::util::Timeout;
use tokio::sync::mpsc;
use tracing::error;

use super::*;
use crate::internal_events::{InternalEvent, ProducerRebuilt};

/// How long to wait, after purging, for the purged events' reports: each comes back at once
/// (nothing waits for a broker), so this bounds only a stuck disk under the dead-letter file.
const PURGE_REPORT_WAIT: Duration = Duration::from_secs(30);

/// A record taken back from a broken producer, to be sent again by its replacement.
pub(super) struct Rescued {
    pub(super) topic: String,
    pub(super) key: Option<Vec<u8>>,
    pub(super) headers: Option<OwnedHeaders>,
    pub(super) payload: Vec<u8>,
    pub(super) pending: Box<PendingDelivery>,
    /// To be sent in a batch of its own (its batch was refused as too large).
    pub(super) alone: bool,
}

impl Rescued {
    /// What `message` carried, to be sent again (`alone`: in a batch of its own).
    pub(super) fn of(
        message: &BorrowedMessage<'_>,
        pending: Box<PendingDelivery>,
        alone: bool,
    ) -> Self {
        Rescued {
            topic: message.topic().to_owned(),
            key: message.key().map(<[u8]>::to_vec),
            headers: message.headers().map(|headers| headers.detach()),
            payload: message.payload().unwrap_or_default().to_vec(),
            pending,
            alone,
        }
    }

    /// Hands it to the rescue loop; gives it back when nobody is left to send it.
    pub(super) fn hand_over(self, shared: &Shared) -> Result<(), Box<PendingDelivery>> {
        shared.resending.fetch_add(1, Ordering::AcqRel);
        shared
            .rescue
            .send(self)
            .map_err(|mpsc::error::SendError(returned)| {
                shared.resending.fetch_sub(1, Ordering::AcqRel);
                returned.pending
            })
    }
}

impl Publisher {
    pub(super) async fn rebuild_loop(self: Arc<Self>) {
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
        if let Some(alone) = old.alone.get() {
            alone.context().retired.store(true, Ordering::Release);
            alone.purge(PurgeConfig::default().queue().inflight());
        }
        old.producer
            .purge(PurgeConfig::default().queue().inflight());
        drain_reports(&old.producer);
        if let Some(alone) = old.alone.get() {
            drain_reports(alone);
        }
        self.shared.health.clear_fatal_error();
        let rebuilds = self.rebuilds.fetch_add(1, Ordering::Relaxed) + 1;
        ProducerRebuilt { rebuilds }.emit(&self.shared.metrics);
        Ok(())
    }

    pub(super) async fn rescue_loop(
        self: Arc<Self>,
        mut rescued: mpsc::UnboundedReceiver<Rescued>,
    ) {
        while let Some(mut record) = rescued.recv().await {
            if !record.alone {
                record.pending.rescues += 1;
            }
            let mut pending = record.pending;
            loop {
                let headers = record.headers.clone().unwrap_or_default();
                let sent = self.send(
                    record.alone,
                    &record.topic,
                    record.key.as_deref(),
                    headers,
                    &record.payload,
                    pending,
                );
                match sent {
                    Ok(()) => {
                        self.shared.resending.fetch_sub(1, Ordering::AcqRel);
                        break;
                    }
                    Err((_, returned)) => {
                        // Queue full or the replacement is not ready yet: wait, keep the event.
                        pending = returned;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
    }
}

/// Waits until the producer has handed every delivery report to its callback: librdkafka counts
/// a message in `in_flight_count` until its report was served. A producer dropped before that
/// loses the events whose reports it still held.
pub(super) fn drain_reports(producer: &ThreadedProducer<DeliveryContext>) {
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
