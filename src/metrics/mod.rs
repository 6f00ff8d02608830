//! Every Prometheus metric the bridge exports, defined in one place with typed recorders.
//!
//! Label values are bounded: event types come from the catalog, topics from configuration,
//! statuses and reasons from fixed lists. Nothing from a request body becomes a label.

mod librdkafka;

use std::time::Duration;

use crate::zego::SignatureRefusal;
use librdkafka::LibrdkafkaMetrics;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Label used for requests that never got as far as naming an event type.
pub const NO_TYPE: &str = "none";

/// Every `reason` of `zego_bridge_unavailable_total` (503), listed in its HELP.
pub const UNAVAILABLE_REASONS: [&str; 15] = [
    "shutting_down",
    "body_budget",
    "signature_in_use",
    "dead_letter_unwritable",
    "queue_full",
    "kafka_unreachable",
    "topic_missing",
    "producer_fatal",
    "kafka_refused",
    "producer_error",
    "not_delivered",
    "delivery_timeout",
    "no_schema",
    "spool_full",
    "spool_failed",
];

/// Bucket bounds of the ack-latency histogram: from 100 µs to 5 s.
const ACK_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Bucket bounds of the Kafka delivery-latency histogram: from 1 ms to 5 min.
const DELIVERY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Bucket bounds of the clock-offset histogram, in seconds either side of ZEGO's clock: fine up
/// to the default skew limit (300 s), coarser up to an hour, so that the alert's median can
/// pass half of a skew limit up to two hours.
const CLOCK_OFFSET_BUCKETS: &[f64] = &[
    -3600.0, -1800.0, -900.0, -600.0, -300.0, -240.0, -180.0, -120.0, -60.0, -30.0, -10.0, -3.0,
    -1.0, 0.0, 1.0, 3.0, 10.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0,
];

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Failed,
}

impl DeliveryOutcome {
    fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed => "failed",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// The `undelivered_at_shutdown` the last finished scrape carried (-1: none yet): the
    /// shutdown waits until a scrape has carried the count it set. (Counting scrapes begun
    /// after the count was set raced: one that began between setting it and reading the
    /// counter carried the count and was not counted, and the bridge waited its whole wait.)
    undelivered_scraped: std::sync::atomic::AtomicI64,
    callbacks: IntCounterVec,
    ack_latency: HistogramVec,
    signature_refusals: IntCounterVec,
    unavailable: IntCounterVec,
    field_coercion_failures: IntCounterVec,
    deliveries: IntCounterVec,
    delivery_latency: HistogramVec,
    undelivered_at_shutdown: IntGauge,
    queue_messages: IntGauge,
    queue_capacity: IntGauge,
    in_flight: IntGauge,
    kafka_reachable: IntGauge,
    ready: IntGauge,
    topic_missing: IntGaugeVec,
    topic_max_message_bytes: IntGaugeVec,
    duplicates: IntCounterVec,
    clock_offset: HistogramVec,
    used_signatures: IntGauge,
    signature_reuses: IntCounterVec,
    used_signatures_forgotten: IntCounter,
    signature_conflicts: IntCounter,
    used_signatures_shared: IntGauge,
    max_clock_skew: IntGauge,
    dead_lettered: IntCounterVec,
    dead_letter_write_failures: IntCounter,
    dead_letter_writable: IntGauge,
    producer_rebuilds: IntCounter,
    rescued: IntCounter,
    sent_alone: IntCounter,
    spool_bytes: IntGauge,
    spool_capacity: IntGauge,
    spool_pending: IntGauge,
    spool_records_written: IntCounter,
    spool_fsyncs: IntCounter,
    spool_quarantined: IntCounterVec,
    spool_quarantined_bytes: IntCounter,
    spool_destroyed: IntCounter,
    spool_checkpoint_distrusted: IntCounter,
    spool_write_failures: IntCounter,
    dead_letter_retries: IntCounterVec,
    callback_secrets: IntGauge,
    callback_secrets_reloads: IntCounterVec,
    callback_secrets_file_invalid: IntGauge,
    librdkafka: LibrdkafkaMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let build_info = gauge_vec(
            "zego_bridge_build_info",
            "Always 1; the labels say what runs: version, git_commit, rustc (the compiler's version) and librdkafka (the linked library's version).",
            &["version", "git_commit", "rustc", "librdkafka"],
        );
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("BUILD_GIT_COMMIT"),
                env!("BUILD_RUSTC_VERSION"),
                &rdkafka::util::get_rdkafka_version().1,
            ])
            .set(1);
        let metrics = Metrics {
            registry: Registry::new(),
            undelivered_scraped: std::sync::atomic::AtomicI64::new(-1),
            callbacks: counter_vec(
                "zego_bridge_callbacks_total",
                "Callbacks answered; type: the normalized event type (docs/events.md), or none when the request got no further than naming one; status: the HTTP status, one of 200, 400, 401, 404, 405, 408, 413, 415, 431, 500, 501, 503, or other.",
                &["type", "status"],
            ),
            ack_latency: histogram_vec(
                "zego_bridge_ack_latency_seconds",
                "Time from request start to the reply; status: the HTTP status, one of 200, 400, 401, 404, 405, 408, 413, 415, 431, 500, 501, 503, or other.",
                &["status"],
                ACK_BUCKETS,
            ),
            signature_refusals: counter_vec(
                "zego_bridge_signature_refusals_total",
                &format!(
                    "Callbacks refused with 401; reason: one of {}.",
                    SignatureRefusal::ALL.map(SignatureRefusal::reason).join(", ")
                ),
                &["reason"],
            ),
            unavailable: counter_vec(
                "zego_bridge_unavailable_total",
                &format!(
                    "Callbacks refused with 503; reason: one of {}.",
                    UNAVAILABLE_REASONS.join(", ")
                ),
                &["reason"],
            ),
            field_coercion_failures: counter_vec(
                "zego_bridge_field_coercion_failures_total",
                "Declared fields whose value had the wrong form (published as null, kept under `extra`); type: the event type; field: the field's name in docs/events.md.",
                &["type", "field"],
            ),
            deliveries: counter_vec(
                "zego_bridge_kafka_deliveries_total",
                "Kafka delivery reports; topic: a configured topic; outcome: delivered or failed.",
                &["topic", "outcome"],
            ),
            delivery_latency: histogram_vec(
                "zego_bridge_kafka_delivery_latency_seconds",
                "Time from enqueueing an event to Kafka's acknowledgement; topic: a configured topic.",
                &["topic"],
                DELIVERY_BUCKETS,
            ),
            undelivered_at_shutdown: gauge(
                "zego_bridge_undelivered_at_shutdown",
                "Set as the process stops: events still queued when the shutdown deadline passed, written \
                 to the dead-letter file (lost if that file's volume goes with the pod). The admin \
                 port stays open for one scrape of it (ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS).",
            ),
            queue_messages: gauge(
                "zego_bridge_kafka_queue_messages",
                "Events in the producer queue or in flight to Kafka.",
            ),
            queue_capacity: gauge(
                "zego_bridge_kafka_queue_capacity_messages",
                "Events the producer queue holds at most (queue.buffering.max.messages); beyond it, 503.",
            ),
            in_flight: gauge(
                "zego_bridge_http_requests_in_flight",
                "Callback requests being handled now.",
            ),
            kafka_reachable: gauge(
                "zego_bridge_kafka_reachable",
                "1 when the last metadata request to Kafka succeeded.",
            ),
            ready: gauge(
                "zego_bridge_ready",
                "1 when the bridge accepts callbacks (Kafka reachable, not shutting down).",
            ),
            topic_max_message_bytes: gauge_vec(
                "zego_bridge_kafka_topic_max_message_bytes",
                "A topic's max.message.bytes as last read from the cluster (label topic): an \
                 event that cannot fit it even compressed is refused with 413.",
                &["topic"],
            ),
            topic_missing: gauge_vec(
                "zego_bridge_kafka_topic_missing",
                "1 while a configured topic (label topic) does not exist in the cluster.",
                &["topic"],
            ),
            duplicates: counter_vec(
                "zego_bridge_duplicates_total",
                "Retries of an already accepted callback, answered 200 without publishing again; type: the event type.",
                &["type"],
            ),
            clock_offset: histogram_vec(
                "zego_bridge_callback_clock_offset_seconds",
                "For callbacks whose signature verified: the bridge's clock at receipt minus the \
                 callback's signed timestamp; product: the sending product (callback path name). \
                 Network delay and ZEGO's retries add a few seconds; a median that drifts towards \
                 zego_bridge_max_clock_skew_seconds is a clock going wrong, and past it every \
                 callback is refused with 401 (for ZIM's before_send_msg, its message is not sent).",
                &["product"],
                CLOCK_OFFSET_BUCKETS,
            ),
            used_signatures: gauge(
                "zego_bridge_used_signatures",
                "Signatures remembered in this pod, each with the callback it was used for, so that \
                 a captured signature is refused with another body (for twice \
                 ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS after first seen).",
            ),
            signature_reuses: counter_vec(
                "zego_bridge_signature_reuses_total",
                "Callbacks whose signature verified but had come with another callback first \
                 (ZEGO does not sign the body): spelling=respelled, timestamp and nonce spelled \
                 otherwise (digits moved: a forgery, 401); spelling=same, spelled as before (a \
                 replay, or ZEGO's random nonce repeating within a second: 503, which a retry \
                 signed afresh passes).",
                &["spelling"],
            ),
            signature_conflicts: counter(
                "zego_bridge_signature_conflicts_total",
                "Signatures found used for two different callbacks after both were taken: one on \
                 another replica (or before a restart) and one here, within the moment the \
                 replicas take to share a use. One of the two events may be a forgery.",
            ),
            used_signatures_shared: gauge(
                "zego_bridge_used_signatures_shared",
                "1 while this replica reads and writes the used-signatures topic (its memory of \
                 used signatures is shared with the other replicas and kept across restarts); 0 \
                 when it cannot (the topic missing, Kafka away): it remembers its own only.",
            ),
            used_signatures_forgotten: counter(
                "zego_bridge_used_signatures_forgotten_total",
                "Signatures forgotten before their window ended, to stay within 1,000,000 held: \
                 each could be replayed with a forged body until its timestamp leaves the skew \
                 window.",
            ),
            max_clock_skew: gauge(
                "zego_bridge_max_clock_skew_seconds",
                "ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS: how far a callback's timestamp may be from the \
                 bridge's clock before it is refused with 401 (0: not checked).",
            ),
            dead_lettered: counter_vec(
                "zego_bridge_dead_lettered_total",
                "Acknowledged events that could not be delivered and were written to the dead-letter file; topic: the topic they were meant for.",
                &["topic"],
            ),
            dead_letter_write_failures: counter(
                "zego_bridge_dead_letter_write_failures_total",
                "Acknowledged events that could not be delivered nor written to the dead-letter file (lost).",
            ),
            dead_letter_writable: gauge(
                "zego_bridge_dead_letter_file_writable",
                "1 while the dead-letter file's disk takes a write (proven every second, and by \
                 every letter); 0 while it does not, and ack mode queued answers 503.",
            ),
            producer_rebuilds: counter(
                "zego_bridge_producer_rebuilds_total",
                "Times the Kafka producer was rebuilt after a fatal error.",
            ),
            rescued: counter(
                "zego_bridge_rescued_total",
                "Events taken back from a failed producer and sent again by its replacement.",
            ),
            sent_alone: counter(
                "zego_bridge_events_sent_alone_total",
                "Events whose record batch Kafka refused as too large (max.message.bytes limits \
                 a whole batch), sent again one record per batch.",
            ),
            spool_bytes: gauge(
                "zego_bridge_spool_bytes",
                "Bytes in the spool's segment files (ack mode spooled).",
            ),
            spool_capacity: gauge(
                "zego_bridge_spool_capacity_bytes",
                "Bytes the spool may use (ZEGO_BRIDGE_SPOOL_MAX_BYTES; ack mode spooled); beyond it, 503.",
            ),
            spool_pending: gauge(
                "zego_bridge_spool_pending_events",
                "Events in the spool not yet acknowledged by Kafka (ack mode spooled).",
            ),
            spool_records_written: counter(
                "zego_bridge_spool_events_written_total",
                "Events appended to the spool and fsync'd.",
            ),
            spool_quarantined: counter_vec(
                "zego_bridge_spool_quarantined_total",
                "Ranges of spool bytes that were no valid record, copied to the spool's quarantine/ \
                 directory and skipped. cause: damaged (corruption: every intact record around it \
                 is still published), torn_tail (an incomplete last record a crash cut short, \
                 never acknowledged).",
                &["cause"],
            ),
            spool_quarantined_bytes: counter(
                "zego_bridge_spool_quarantined_bytes_total",
                "Bytes copied to the spool's quarantine/ directory.",
            ),
            spool_destroyed: counter(
                "zego_bridge_spool_destroyed_events_total",
                "Acknowledged events the spool had written and that damage to its files destroyed \
                 while the bridge ran (their bytes are in quarantine/).",
            ),
            spool_checkpoint_distrusted: counter(
                "zego_bridge_spool_checkpoint_distrusted_total",
                "Spool checkpoints found impossible (unreadable, past the data, not at a record) \
                 and not trusted: the whole spool was published again (duplicates, no loss).",
            ),
            spool_write_failures: counter(
                "zego_bridge_spool_write_failures_total",
                "Group commits of the spool that failed (disk full, unwritable, I/O error): their \
                 callbacks got 503.",
            ),
            spool_fsyncs: counter(
                "zego_bridge_spool_fsyncs_total",
                "fsyncs of the spool; events written per fsync shows the group commit at work.",
            ),
            dead_letter_retries: counter_vec(
                "zego_bridge_dead_letter_retries_total",
                "Dead letters the bridge sent again (ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS); \
                 outcome: delivered (in Kafka now), kept (failed again, back in the file for the \
                 next pass) or rejected (no retry can deliver it: moved to <file>.rejected).",
                &["outcome"],
            ),
            callback_secrets: gauge(
                "zego_bridge_callback_secrets",
                "Callback secrets in use (from ZEGO_BRIDGE_CALLBACK_SECRETS or its file).",
            ),
            callback_secrets_reloads: counter_vec(
                "zego_bridge_callback_secrets_reloads_total",
                "Changes of ZEGO_BRIDGE_CALLBACK_SECRETS_FILE seen; outcome: applied (its secrets \
                 are in use) or failed (unreadable or invalid: the secrets in use stay).",
                &["outcome"],
            ),
            callback_secrets_file_invalid: gauge(
                "zego_bridge_callback_secrets_file_invalid",
                "1 once a change made ZEGO_BRIDGE_CALLBACK_SECRETS_FILE unreadable or invalid \
                 (the previous secrets stay in use), until a valid change; 0 otherwise.",
            ),
            librdkafka: LibrdkafkaMetrics::new(),
        };
        for collector in [
            Box::new(metrics.callbacks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.ack_latency.clone()),
            Box::new(metrics.signature_refusals.clone()),
            Box::new(metrics.unavailable.clone()),
            Box::new(metrics.field_coercion_failures.clone()),
            Box::new(metrics.deliveries.clone()),
            Box::new(metrics.delivery_latency.clone()),
            Box::new(metrics.undelivered_at_shutdown.clone()),
            Box::new(metrics.queue_messages.clone()),
            Box::new(metrics.queue_capacity.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.kafka_reachable.clone()),
            Box::new(metrics.ready.clone()),
            Box::new(metrics.topic_missing.clone()),
            Box::new(metrics.topic_max_message_bytes.clone()),
            Box::new(metrics.duplicates.clone()),
            Box::new(metrics.clock_offset.clone()),
            Box::new(metrics.max_clock_skew.clone()),
            Box::new(metrics.used_signatures.clone()),
            Box::new(metrics.signature_reuses.clone()),
            Box::new(metrics.used_signatures_forgotten.clone()),
            Box::new(metrics.signature_conflicts.clone()),
            Box::new(metrics.used_signatures_shared.clone()),
            Box::new(metrics.dead_lettered.clone()),
            Box::new(metrics.dead_letter_write_failures.clone()),
            Box::new(metrics.dead_letter_writable.clone()),
            Box::new(metrics.producer_rebuilds.clone()),
            Box::new(metrics.rescued.clone()),
            Box::new(metrics.sent_alone.clone()),
            Box::new(metrics.spool_bytes.clone()),
            Box::new(metrics.spool_capacity.clone()),
            Box::new(metrics.spool_pending.clone()),
            Box::new(metrics.spool_records_written.clone()),
            Box::new(metrics.spool_fsyncs.clone()),
            Box::new(metrics.spool_quarantined.clone()),
            Box::new(metrics.spool_quarantined_bytes.clone()),
            Box::new(metrics.spool_destroyed.clone()),
            Box::new(metrics.spool_checkpoint_distrusted.clone()),
            Box::new(metrics.spool_write_failures.clone()),
            Box::new(metrics.dead_letter_retries.clone()),
            Box::new(metrics.callback_secrets.clone()),
            Box::new(metrics.callback_secrets_reloads.clone()),
            Box::new(metrics.callback_secrets_file_invalid.clone()),
            Box::new(build_info),
            // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
            // process_max_fds, process_start_time_seconds, …, read from /proc at each scrape.
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ]
        .into_iter()
        .chain(metrics.librdkafka.collectors())
        {
            metrics
                .registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }

    /// Creates at zero the series whose labels are known in advance. A counter that first
    /// appears at 1 hides that increment from `increase()` and `rate()`, so an alert on the
    /// first failed delivery would never fire.
    pub fn initialize_series(&self, topics: &[String], event_types: &[&str]) {
        // The answers an alert divides: a first burst of 503s for a type must show in rate().
        for event_type in event_types {
            self.duplicates.with_label_values(&[event_type]);
            for status in [200, 401, 503] {
                self.callbacks
                    .with_label_values(&[event_type, status_label(status)]);
            }
        }
        for status in [400, 401, 408, 413, 415, 431, 503] {
            self.callbacks
                .with_label_values(&[NO_TYPE, status_label(status)]);
        }
        for topic in topics {
            for outcome in [DeliveryOutcome::Delivered, DeliveryOutcome::Failed] {
                self.deliveries.with_label_values(&[topic, outcome.label()]);
            }
            self.dead_lettered.with_label_values(&[topic]);
            self.topic_missing.with_label_values(&[topic]);
        }
        for refusal in SignatureRefusal::ALL {
            self.signature_refusals
                .with_label_values(&[refusal.reason()]);
        }
        for outcome in ["delivered", "kept", "rejected"] {
            self.dead_letter_retries.with_label_values(&[outcome]);
        }
        for outcome in ["applied", "failed"] {
            self.callback_secrets_reloads.with_label_values(&[outcome]);
        }
        for reason in UNAVAILABLE_REASONS {
            self.unavailable.with_label_values(&[reason]);
        }
        for cause in ["damaged", "torn_tail"] {
            self.spool_quarantined.with_label_values(&[cause]);
        }
        // The first reuse of a signature must show in increase(): it is the alert.
        for spelling in ["same", "respelled"] {
            self.signature_reuses.with_label_values(&[spelling]);
        }
    }

    pub fn callback_answered(&self, event_type: &str, status: u16, elapsed: Duration) {
        let status = status_label(status);
        self.callbacks
            .with_label_values(&[event_type, status])
            .inc();
        self.ack_latency
            .with_label_values(&[status])
            .observe(elapsed.as_secs_f64());
    }

    pub fn signature_refused(&self, reason: &str) {
        self.signature_refusals.with_label_values(&[reason]).inc();
    }

    pub fn unavailable(&self, reason: &str) {
        self.unavailable.with_label_values(&[reason]).inc();
    }

    pub fn field_coercion_failed(&self, event_type: &str, field: &str) {
        self.field_coercion_failures
            .with_label_values(&[event_type, field])
            .inc();
    }

    pub fn delivery(&self, topic: &str, outcome: DeliveryOutcome, elapsed: Duration) {
        self.deliveries
            .with_label_values(&[topic, outcome.label()])
            .inc();
        if outcome == DeliveryOutcome::Delivered {
            self.delivery_latency
                .with_label_values(&[topic])
                .observe(elapsed.as_secs_f64());
        }
    }

    /// A verified callback of `product` arrived `offset_secs` after its signed timestamp
    /// (negative: before it, by the bridge's clock).
    pub fn clock_offset(&self, product: &str, offset_secs: f64) {
        self.clock_offset
            .with_label_values(&[product])
            .observe(offset_secs);
    }

    /// `held` signatures remembered now; `forgot_one`: one was forgotten early to make room.
    pub fn used_signatures(&self, held: usize, forgot_one: bool) {
        self.used_signatures
            .set(i64::try_from(held).unwrap_or(i64::MAX));
        if forgot_one {
            self.used_signatures_forgotten.inc();
        }
    }

    pub fn signature_reused(&self, respelled: bool) {
        self.signature_reuses
            .with_label_values(&[if respelled { "respelled" } else { "same" }])
            .inc();
    }

    pub fn signature_conflict(&self) {
        self.signature_conflicts.inc();
    }

    pub fn set_used_signatures_shared(&self, shared: bool) {
        self.used_signatures_shared.set(i64::from(shared));
    }

    pub fn set_max_clock_skew(&self, secs: u64) {
        self.max_clock_skew
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    pub fn duplicate(&self, event_type: &str) {
        self.duplicates.with_label_values(&[event_type]).inc();
    }

    pub fn dead_lettered(&self, topic: &str) {
        self.dead_lettered.with_label_values(&[topic]).inc();
    }

    pub fn set_dead_letter_writable(&self, writable: bool) {
        self.dead_letter_writable.set(i64::from(writable));
    }

    pub fn dead_letter_write_failed(&self) {
        self.dead_letter_write_failures.inc();
    }

    pub fn producer_rebuilt(&self) {
        self.producer_rebuilds.inc();
    }

    pub fn rescued(&self) {
        self.rescued.inc();
    }

    pub fn sent_alone(&self) {
        self.sent_alone.inc();
    }

    /// One group commit of `events` appends.
    pub fn spool_written(&self, events: usize) {
        self.spool_fsyncs.inc();
        self.spool_records_written.inc_by(events as u64);
    }

    /// A damaged or torn range of spool bytes moved to quarantine.
    pub fn spool_quarantined(&self, cause: &str, bytes: u64) {
        self.spool_quarantined.with_label_values(&[cause]).inc();
        self.spool_quarantined_bytes.inc_by(bytes);
    }

    pub fn spool_destroyed(&self, events: u64) {
        self.spool_destroyed.inc_by(events);
    }

    pub fn spool_checkpoint_distrusted(&self) {
        self.spool_checkpoint_distrusted.inc();
    }

    pub fn spool_write_failed(&self) {
        self.spool_write_failures.inc();
    }

    pub fn set_spool(&self, bytes: u64, pending: u64) {
        self.spool_bytes.set(bytes as i64);
        self.spool_pending.set(pending as i64);
    }

    pub fn undelivered_at_shutdown(&self, count: i64) {
        self.undelivered_at_shutdown.set(count);
    }

    pub fn set_queue_capacity(&self, messages: i64) {
        self.queue_capacity.set(messages);
    }

    pub fn set_spool_capacity(&self, bytes: u64) {
        self.spool_capacity
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn set_queue_messages(&self, count: i64) {
        self.queue_messages.set(count);
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn request_in_flight(&self) -> InFlightGuard<'_> {
        self.in_flight.inc();
        InFlightGuard(&self.in_flight)
    }

    pub fn set_kafka_reachable(&self, reachable: bool) {
        self.kafka_reachable.set(i64::from(reachable));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    pub fn set_topic_max_message_bytes(&self, topic: &str, bytes: usize) {
        self.topic_max_message_bytes
            .with_label_values(&[topic])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn set_topic_missing(&self, topic: &str, missing: bool) {
        self.topic_missing
            .with_label_values(&[topic])
            .set(i64::from(missing));
    }

    pub fn dead_letters_retried(&self, delivered: usize, kept: usize, rejected: usize) {
        for (outcome, count) in [
            ("delivered", delivered),
            ("kept", kept),
            ("rejected", rejected),
        ] {
            self.dead_letter_retries
                .with_label_values(&[outcome])
                .inc_by(count as u64);
        }
    }

    pub fn set_callback_secrets(&self, count: usize) {
        self.callback_secrets.set(count as i64);
    }

    pub fn set_callback_secrets_file_invalid(&self, invalid: bool) {
        self.callback_secrets_file_invalid.set(i64::from(invalid));
    }

    pub fn callback_secrets_reloaded(&self, count: usize) {
        self.callback_secrets_reloads
            .with_label_values(&["applied"])
            .inc();
        self.set_callback_secrets_file_invalid(false);
        self.set_callback_secrets(count);
    }

    pub fn callback_secrets_reload_failed(&self) {
        self.callback_secrets_reloads
            .with_label_values(&["failed"])
            .inc();
        self.set_callback_secrets_file_invalid(true);
    }

    /// A statistics report of the live producer (every `statistics.interval.ms`).
    pub fn producer_statistics(&self, statistics: &rdkafka::statistics::Statistics) {
        self.librdkafka.record(statistics);
    }

    /// The `undelivered_at_shutdown` the last finished scrape carried (-1 before any).
    pub fn undelivered_scraped(&self) -> i64 {
        self.undelivered_scraped
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The Prometheus text exposition of every metric (a scrape).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        // The value this very scrape carries, from what was gathered (the gauge read apart,
        // before or after, could differ from it).
        let undelivered = families
            .iter()
            .find(|family| family.name() == "zego_bridge_undelivered_at_shutdown")
            .and_then(|family| family.get_metric().first())
            .map_or(-1, |metric| metric.get_gauge().get_value() as i64);
        let mut buffer = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&families, &mut buffer)
            .expect("text encoding of gathered metrics cannot fail");
        let text = String::from_utf8(buffer).expect("the text format is UTF-8");
        // The largest carried: a slow scrape of the earlier value finishing after a quick one
        // of the count must not hide it (the count is set once, as the process stops).
        self.undelivered_scraped
            .fetch_max(undelivered, std::sync::atomic::Ordering::AcqRel);
        text
    }
}

// The definitions above are constants: a failure here is a programming error caught by any test.
fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric definition")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric definition")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid metric definition")
}

pub struct InFlightGuard<'a>(&'a IntGauge);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Static label strings for the statuses the bridge answers with, so recording allocates nothing.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        431 => "431",
        500 => "500",
        501 => "501",
        503 => "503",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_known_in_advance_start_at_zero() {
        let metrics = Metrics::new();
        metrics.initialize_series(&["zego.room.closed".to_owned()], &["room.closed"]);
        let text = metrics.render();
        for series in [
            r#"zego_bridge_kafka_deliveries_total{outcome="failed",topic="zego.room.closed"} 0"#,
            r#"zego_bridge_kafka_deliveries_total{outcome="delivered",topic="zego.room.closed"} 0"#,
            r#"zego_bridge_dead_lettered_total{topic="zego.room.closed"} 0"#,
            r#"zego_bridge_kafka_topic_missing{topic="zego.room.closed"} 0"#,
            r#"zego_bridge_signature_refusals_total{reason="replayed_signature"} 0"#,
            r#"zego_bridge_signature_reuses_total{spelling="same"} 0"#,
            r#"zego_bridge_callbacks_total{status="503",type="room.closed"} 0"#,
            r#"zego_bridge_callbacks_total{status="400",type="none"} 0"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }

    /// Labels whose values are a fixed list: each value must appear in its family's HELP.
    const LISTED_LABELS: [&str; 6] = ["status", "reason", "outcome", "cause", "kind", "percentile"];

    /// Every HELP names each of its family's labels, and lists every value of a fixed-list
    /// label that the family exports, so that a reader of /metrics needs no source code.
    #[test]
    fn help_texts_name_every_label_and_list_fixed_values() {
        let metrics = Metrics::new();
        metrics.initialize_series(&["zego.room.closed".to_owned()], &["room.closed"]);
        for status in 100..600 {
            metrics.callback_answered(NO_TYPE, status, Duration::from_millis(1));
        }
        metrics.field_coercion_failed("room.closed", "close_reason");
        metrics.duplicate("room.closed");
        metrics.set_topic_missing("zego.room.closed", false);
        metrics.delivery(
            "zego.room.closed",
            DeliveryOutcome::Delivered,
            Duration::from_millis(1),
        );
        let mut report = rdkafka::statistics::Statistics::default();
        let window = rdkafka::statistics::Window {
            cnt: 1,
            ..Default::default()
        };
        report.brokers.insert(
            "b/1".into(),
            rdkafka::statistics::Broker {
                nodeid: 1,
                rtt: Some(window.clone()),
                ..Default::default()
            },
        );
        report.topics.insert(
            "zego.room.closed".into(),
            rdkafka::statistics::Topic {
                topic: "zego.room.closed".into(),
                batchsize: window.clone(),
                batchcnt: window,
                ..Default::default()
            },
        );
        metrics.producer_statistics(&report);

        let text = metrics.render();
        let mut help = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, body) = rest.split_once(' ').unwrap();
                help.insert(name.to_owned(), body.to_owned());
            }
        }
        let mut checked = 0;
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, labels)) = line.split_once('{') else {
                continue;
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| series.strip_suffix(suffix))
                .filter(|family| help.contains_key(*family))
                .unwrap_or(series);
            let family_help = &help[family];
            let labels = labels.split_once('}').unwrap().0;
            for pair in labels.split("\",").filter(|pair| !pair.is_empty()) {
                let (label, value) = pair.split_once("=\"").unwrap();
                let value = value.trim_end_matches('"');
                if label == "le" {
                    continue;
                }
                assert!(
                    family_help.contains(label),
                    "HELP of {family} does not name its label {label}: {family_help}"
                );
                if LISTED_LABELS.contains(&label) {
                    assert!(
                        family_help.contains(value),
                        "HELP of {family} does not list {label}={value}: {family_help}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} labels checked");
    }

    #[test]
    fn renders_every_family_with_help() {
        let metrics = Metrics::new();
        metrics.callback_answered("room.created", 200, Duration::from_micros(300));
        metrics.signature_refused("mismatch");
        metrics.delivery(
            "zego.room.created",
            DeliveryOutcome::Delivered,
            Duration::from_millis(3),
        );
        let text = metrics.render();
        assert!(
            text.contains(r#"zego_bridge_callbacks_total{status="200",type="room.created"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"zego_bridge_signature_refusals_total{reason="mismatch"} 1"#));
        assert!(text.contains("# HELP zego_bridge_kafka_delivery_latency_seconds"));
        {
            let _guard = metrics.request_in_flight();
            assert!(metrics
                .render()
                .contains("zego_bridge_http_requests_in_flight 1"));
        }
        assert!(metrics
            .render()
            .contains("zego_bridge_http_requests_in_flight 0"));
    }
}
