//! The three ack modes: what "accepted" promises, and what each does with an accepted event
//! before the callback is answered 200. The mode is chosen once, in [`for_mode`]; nothing else
//! matches on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::configuration::{AckMode, SpoolSettings};
use crate::error::Unavailable;
use crate::event::Event;
use crate::kafka::{OutgoingRecord, PublishError, Publisher};
use crate::metrics::Metrics;
use crate::spool::{self, Spool, SpoolError, SpoolOptions};

/// Records the spool's drainer keeps in flight at once.
const SPOOL_DRAIN_WINDOW: usize = 10_000;

/// What shutting down achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Accepted events that were still not delivered when the deadline passed, and were
    /// dead-lettered (ack modes `queued` and `delivered`).
    pub undelivered: i32,
    /// Accepted events kept in the spool for the next start (ack mode `spooled`).
    pub left_in_spool: u64,
    /// Letters in the dead-letter file (and the bridge's retries of it) as the process ends:
    /// those of `undelivered`, and any an outage left there earlier. Not in Kafka yet: sent by
    /// the next bridge on that file, lost if the file goes with the pod.
    pub dead_letters_waiting: u64,
}

impl ShutdownReport {
    /// Acknowledged events not in Kafka as the process ends (the spool's are safe on its disk
    /// and counted apart).
    pub fn not_in_kafka(&self) -> u64 {
        u64::try_from(self.undelivered)
            .unwrap_or(0)
            .max(self.dead_letters_waiting)
    }
}

/// Takes responsibility for accepted events. Once [`Acknowledger::acknowledge`] returns `Ok`
/// the callback is answered 200 and the event is the bridge's to deliver; on `Err` nothing
/// was promised and ZEGO retries.
#[async_trait]
pub trait Acknowledger: Send + Sync + 'static {
    /// The mode's name, as `ZEGO_BRIDGE_ACK_MODE` spells it.
    fn mode(&self) -> &'static str;

    /// Takes the event (`payload` is its JSON encoding) or says why it cannot now.
    async fn acknowledge(&self, event: &Event<'_>, payload: Vec<u8>) -> Result<(), Unavailable>;

    /// Takes an event whose callback is answered at once, whatever becomes of it (ZIM's
    /// `before_send_msg`, whose sender cannot wait): it never refuses and never waits for
    /// Kafka or the disk. It is queued for Kafka (ack mode `queued` or `delivered`) or
    /// submitted to the spool (`spooled`); what cannot be goes to the dead-letter file, from
    /// which it is sent again.
    async fn take_unrefused(&self, event: &Event<'_>, payload: Vec<u8>);

    /// Why no callback can be taken now; empty when they can.
    fn not_ready_reasons(&self) -> Vec<String>;

    /// Why the process should be restarted; `None` while it works or can still recover by
    /// itself.
    fn liveness_problem(&self) -> Option<String> {
        None
    }

    /// Sets the gauges that mirror this mode's state, before a scrape.
    fn refresh_gauges(&self, _metrics: &Metrics) {}

    /// Called once no more events will come: hands what is held to Kafka by `deadline`, and
    /// saves (dead letters, spool) what does not make it.
    async fn shut_down(&self, deadline: Instant) -> ShutdownReport;
}

/// Why [`for_mode`] could not build the acknowledger.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the spool in {dir} (set by ZEGO_BRIDGE_SPOOL_DIR): {source}")]
pub struct SpoolOpenError {
    pub dir: std::path::PathBuf,
    pub source: std::io::Error,
}

/// The acknowledger of the configured mode, on this publisher (which it starts draining to, in
/// mode `spooled`).
pub fn for_mode(
    mode: &AckMode,
    publisher: Arc<Publisher>,
    metrics: Arc<Metrics>,
) -> Result<Arc<dyn Acknowledger>, SpoolOpenError> {
    Ok(match mode {
        AckMode::Queued => Arc::new(Direct {
            publisher,
            delivery_timeout: None,
        }),
        AckMode::Delivered { timeout } => Arc::new(Direct {
            publisher,
            delivery_timeout: Some(*timeout),
        }),
        AckMode::Spooled(settings) => Arc::new(Spooled::open(settings, publisher, metrics)?),
    })
}

/// `queued` and `delivered`: the event goes straight to the producer. In `queued` it is
/// accepted once it is in the producer's in-memory queue, and a failure after that goes to the
/// dead-letter file. In `delivered` the request waits up to `delivery_timeout` for Kafka's
/// acknowledgement (acks=all), and a failure is the request's: 503, and ZEGO retries.
struct Direct {
    publisher: Arc<Publisher>,
    delivery_timeout: Option<Duration>,
}

#[async_trait]
impl Acknowledger for Direct {
    fn mode(&self) -> &'static str {
        match self.delivery_timeout {
            None => "queued",
            Some(_) => "delivered",
        }
    }

    async fn acknowledge(&self, event: &Event<'_>, payload: Vec<u8>) -> Result<(), Unavailable> {
        self.publisher.check_accepting(event.kind, true)?;
        let Some(timeout) = self.delivery_timeout else {
            // In `queued` an event Kafka refuses after the 200 goes to the dead-letter file:
            // without it, the 200 would promise what nothing can keep.
            if let Some(failure) = self.publisher.dead_letter_failure() {
                return Err(Unavailable::DeadLetterUnwritable(failure));
            }
            self.publisher.publish(event, &payload, None)?;
            return Ok(());
        };
        let (delivered, outcome) = oneshot::channel();
        self.publisher.publish(event, &payload, Some(delivered))?;
        let failure = match tokio::time::timeout(timeout, outcome).await {
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(failure))) => PublishError::NotDelivered(failure),
            Ok(Err(_)) => PublishError::Dropped,
            Err(_) => PublishError::DeliveryTimeout(timeout.as_millis()),
        };
        Err(failure.into())
    }

    async fn take_unrefused(&self, event: &Event<'_>, payload: Vec<u8>) {
        if let Err(err) = self.publisher.publish(event, &payload, None) {
            let record = OutgoingRecord::for_event(event, self.publisher.topics(), payload);
            self.publisher.dead_letter_record_later(
                &record,
                &format!("could not be queued for Kafka: {err}"),
            );
        }
    }

    fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = kafka_not_ready_reasons(&self.publisher, true);
        if self.delivery_timeout.is_none() {
            if let Some(failure) = self.publisher.dead_letter_failure() {
                reasons.push(format!(
                    "the dead-letter file cannot take a write (ack mode queued relies on it): \
                     {failure}"
                ));
            }
        }
        reasons
    }

    fn refresh_gauges(&self, metrics: &Metrics) {
        metrics.set_queue_messages(i64::from(self.publisher.queue_depth()));
        // At every scrape, not only when the writer thread notices: a disk that hangs keeps
        // that thread from noticing anything.
        metrics.set_dead_letter_writable(self.publisher.dead_letter_failure().is_none());
    }

    async fn shut_down(&self, deadline: Instant) -> ShutdownReport {
        let queued = self.publisher.queue_depth();
        let undelivered = flush(&self.publisher, deadline).await;
        if undelivered > 0 {
            error!(
                undelivered,
                "accepted events were still undelivered at the shutdown deadline: they were \
                 written to the dead-letter file (raise ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS, or check \
                 Kafka)"
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
            // Counted once the whole process has stopped writing (Application).
            dead_letters_waiting: 0,
        }
    }
}

/// `spooled`: accepted once the event is appended to the write-ahead spool and fsync'd; the
/// spool's drainer publishes it, however long Kafka is away.
struct Spooled {
    publisher: Arc<Publisher>,
    spool: Spool,
    liveness_grace: Duration,
}

impl Spooled {
    fn open(
        settings: &SpoolSettings,
        publisher: Arc<Publisher>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SpoolOpenError> {
        let open_error = |source| SpoolOpenError {
            dir: settings.dir.clone(),
            source,
        };
        spool::check_dir(&settings.dir).map_err(open_error)?;
        let options = SpoolOptions {
            dir: settings.dir.clone(),
            max_bytes: settings.max_bytes,
            window: SPOOL_DRAIN_WINDOW,
        };
        let spool = Spool::open(&options, metrics.clone()).map_err(open_error)?;
        metrics.set_spool_capacity(settings.max_bytes);
        spool.start_draining(publisher.clone());
        Ok(Spooled {
            publisher,
            spool,
            liveness_grace: settings.liveness_grace,
        })
    }
}

#[async_trait]
impl Acknowledger for Spooled {
    fn mode(&self) -> &'static str {
        "spooled"
    }

    async fn acknowledge(&self, event: &Event<'_>, payload: Vec<u8>) -> Result<(), Unavailable> {
        // Kafka may be away: the spool holds the event until it is back.
        self.publisher.check_accepting(event.kind, false)?;
        let record = OutgoingRecord::for_event(event, self.publisher.topics(), payload);
        self.spool
            .append(&record)
            .await
            .map_err(|err: SpoolError| err.into())
    }

    async fn take_unrefused(&self, event: &Event<'_>, payload: Vec<u8>) {
        let record = OutgoingRecord::for_event(event, self.publisher.topics(), payload);
        let submitted = self.spool.submit(&record);
        let publisher = self.publisher.clone();
        // Answered without waiting for the disk: what the spool does not take is dead-lettered.
        tokio::spawn(async move {
            let written = match submitted {
                Ok(written) => written.await.unwrap_or(Err(SpoolError::Closed)),
                Err(err) => Err(err),
            };
            if let Err(err) = written {
                publisher
                    .dead_letter_record_later(&record, &format!("could not be spooled: {err}"));
            }
        });
    }

    fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = kafka_not_ready_reasons(&self.publisher, false);
        if let Some(failure) = self.spool.failure() {
            reasons.push(format!("the spool cannot write to disk: {failure}"));
        }
        if self.spool.is_full() {
            reasons.push("the spool is full".to_owned());
        }
        reasons
    }

    /// A spool that has failed to write for longer than the grace will not recover in place:
    /// a restart (perhaps on another node) is the remedy.
    fn liveness_problem(&self) -> Option<String> {
        let failing_for = self.spool.failing_for()?;
        (failing_for > self.liveness_grace).then(|| {
            format!(
                "the spool has not been able to write to disk for {} s: {}",
                failing_for.as_secs(),
                self.spool.failure().unwrap_or_default()
            )
        })
    }

    fn refresh_gauges(&self, metrics: &Metrics) {
        metrics.set_queue_messages(i64::from(self.publisher.queue_depth()));
        metrics.set_dead_letter_writable(self.publisher.dead_letter_failure().is_none());
        let stats = self.spool.stats();
        metrics.set_spool(stats.bytes, stats.pending);
    }

    async fn shut_down(&self, deadline: Instant) -> ShutdownReport {
        self.spool.stop_appending();
        flush(&self.publisher, deadline).await;
        // What did not make it stays in the spool: it is published at the next start.
        let left = self.spool.finish().await;
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
            dead_letters_waiting: 0,
        }
    }
}

/// What keeps the producer from taking events. `needs_kafka` is false when events go to a local
/// spool first, so that Kafka may be away for a while.
fn kafka_not_ready_reasons(publisher: &Publisher, needs_kafka: bool) -> Vec<String> {
    let mut reasons = Vec::new();
    let health = publisher.health();
    if let Some(fatal) = health.fatal_error() {
        reasons.push(format!("Kafka producer failed: {fatal}"));
    }
    if let Some(refusal) = health.refusal() {
        reasons.push(format!("Kafka refuses the bridge's connection: {refusal}"));
    }
    if needs_kafka && !publisher.kafka_available() {
        reasons.push(
            "Kafka has been unreachable longer than ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS".to_owned(),
        );
    }
    // A few missing topics refuse only their own types (503), and the bridge stays ready for
    // the rest; with none there, no callback could be taken, and a ready pod would say otherwise.
    if health.is_every_topic_missing() {
        reasons.push(
            "none of the configured topics exists in Kafka (create them: `zego-kafka-bridge \
             topics --create`, or the chart's createTopics.enabled)"
                .to_owned(),
        );
    }
    reasons
}

/// Waits for the producer to deliver what it holds, until `deadline`; returns how many events
/// were still undelivered (and were dead-lettered, or reported to their waiters).
async fn flush(publisher: &Arc<Publisher>, deadline: Instant) -> i32 {
    let queued = publisher.queue_depth();
    let publisher = publisher.clone();
    let remaining = deadline.saturating_duration_since(Instant::now());
    tokio::task::spawn_blocking(move || publisher.flush(remaining))
        .await
        .unwrap_or(queued)
}
