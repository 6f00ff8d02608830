//! The used-signature memory, shared by the replicas of a deployment and kept across restarts
//! through a Kafka topic of its own (`{prefix}.bridge.used_signatures`).
//!
//! Each replica writes every first use of a signature to the topic (a hash of it, a hash of how
//! `timestamp` and `nonce` were spelled, the event's id; never the signature), reads the topic
//! from one window back when it starts, before it serves, and then follows it. A captured
//! signature replayed on another replica is refused once that replica has read the first use:
//! within the time a record takes from one producer to another consumer (measured in
//! docs/SECURITY.md). Inside that gap both callbacks are taken; the later reading finds two
//! events under one signature and says so (`zego_bridge_signature_conflicts_total`, an error
//! line with both ids, the alert `ZegoBridgeSignatureUsedTwice`).
//!
//! Nothing here holds a callback up: a use is handed to the producer without waiting, and a
//! replica that cannot reach the topic serves with its own memory alone, said so by
//! `zego_bridge_used_signatures_shared` 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use uuid::Uuid;

use crate::dedup::{RecentCallbacks, SignatureUse};
use crate::internal_events::{InternalEvent, SignatureUsedTwice};
use crate::metrics::Metrics;

use super::config::LibrdkafkaProperties;

/// How long the start waits to have read the window back before it serves anyway.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(10);

/// One use, as written to the topic.
#[derive(Debug, Serialize, Deserialize)]
struct UseRecord {
    /// SHA-1 of the signature as verification reads it (lower-case hex, trimmed).
    key: String,
    /// A hash of `timestamp` and `nonce` as spelled.
    spelling: String,
    event_id: Uuid,
    /// The process that wrote it: its own uses it knows already.
    origin: Uuid,
}

impl UseRecord {
    fn of(used: &SignatureUse, origin: Uuid) -> Self {
        UseRecord {
            key: hex::encode(used.key),
            spelling: format!("{:016x}", used.spelling),
            event_id: used.event_id,
            origin,
        }
    }

    fn to_use(&self) -> Option<SignatureUse> {
        let mut key = [0u8; 20];
        hex::decode_to_slice(&self.key, &mut key).ok()?;
        Some(SignatureUse {
            key,
            spelling: u64::from_str_radix(&self.spelling, 16).ok()?,
            event_id: self.event_id,
        })
    }
}

/// Says when the uses cannot be written (the gauge at 0, a line), and when they can again.
struct ShareContext {
    metrics: Arc<Metrics>,
    /// Logged once per failing stretch.
    failing: AtomicBool,
}

impl ClientContext for ShareContext {}

impl ProducerContext for ShareContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    self.metrics.set_used_signatures_shared(true);
                    info!("signature uses are written to Kafka again");
                }
            }
            Err((error, _)) => {
                if !self.failing.swap(true, Ordering::AcqRel) {
                    self.metrics.set_used_signatures_shared(false);
                    warn!(%error, "a signature use could not be written to Kafka: the other \
                        replicas will not refuse its replay");
                }
            }
        }
    }
}

/// Writes this replica's first uses of signatures.
pub struct SignatureUseLog {
    producer: ThreadedProducer<ShareContext>,
    topic: String,
    origin: Uuid,
}

impl SignatureUseLog {
    /// Hands `used` to the producer, without waiting.
    pub fn share(&self, used: &SignatureUse) {
        let record = UseRecord::of(used, self.origin);
        let value = serde_json::to_vec(&record).expect("a use serializes");
        let sent = self.producer.send(
            BaseRecord::to(&self.topic)
                .key(record.key.as_bytes())
                .payload(&value),
        );
        if let Err((error, _)) = sent {
            let context = self.producer.context();
            if !context.failing.swap(true, Ordering::AcqRel) {
                context.metrics.set_used_signatures_shared(false);
                warn!(%error, "a signature use could not be handed to the producer: the \
                    other replicas will not refuse its replay");
            }
        }
    }
}

/// Where the shared memory lives and how to reach it.
#[derive(Clone)]
pub struct SharingSettings {
    pub brokers: String,
    pub properties: LibrdkafkaProperties,
    pub topic: String,
    /// Whether a failure to start is logged (the first attempt's is; retries' are not).
    pub report_failure: bool,
    /// How long a use is remembered: as far back as the start reads.
    pub window: Duration,
}

/// Reads the topic from one window back into `recent` (waiting up to [`CATCH_UP_WITHIN`]), then
/// returns the log this replica writes its uses to and the work of following the others' (to
/// be spawned). `None` (logged, and the gauge left at 0) when the topic cannot be read: the
/// replica keeps its own memory only.
pub async fn start_sharing(
    settings: SharingSettings,
    recent: Arc<RecentCallbacks>,
    metrics: Arc<Metrics>,
) -> Option<(
    Arc<SignatureUseLog>,
    impl std::future::Future<Output = ()> + Send + 'static,
)> {
    let origin = Uuid::new_v4();
    let window = settings.window;
    let client = |extra: &[(&str, &str)]| {
        let mut config = ClientConfig::new();
        for (key, value) in &settings.properties.0 {
            config.set(key, value);
        }
        config.set("bootstrap.servers", &settings.brokers);
        for (key, value) in extra {
            config.set(*key, *value);
        }
        config
    };
    let consumer: StreamConsumer = match client(&[
        ("group.id", &format!("zego-kafka-bridge-{origin}")),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("fetch.wait.max.ms", "10"),
    ])
    .create()
    {
        Ok(consumer) => consumer,
        Err(error) => return not_shared(&settings, &error.to_string()),
    };
    // A use is worth delivering for as long as its window lasts: a Kafka outage shorter than
    // that loses none (the others learn it late, and find any conflict then).
    let timeout_ms = window.as_millis().max(1_000).to_string();
    let producer = match client(&[
        ("linger.ms", "1"),
        ("acks", "all"),
        ("message.timeout.ms", &timeout_ms),
    ])
    .create_with_context(ShareContext {
        metrics: metrics.clone(),
        failing: AtomicBool::new(false),
    }) {
        Ok(producer) => producer,
        Err(error) => return not_shared(&settings, &error.to_string()),
    };
    let topic = settings.topic.clone();
    let caught_up = {
        let (consumer, topic) = (consumer, topic.clone());
        tokio::task::spawn_blocking(move || {
            assign_from(&consumer, &topic, window).map(|ends| (consumer, ends))
        })
        .await
    };
    let (consumer, ends) = match caught_up {
        Ok(Ok(assigned)) => assigned,
        Ok(Err(error)) => return not_shared(&settings, &error),
        Err(error) => return not_shared(&settings, &error.to_string()),
    };
    let started = Instant::now();
    let mut learned = 0usize;
    let mut positions: HashMap<i32, i64> = HashMap::new();
    while !ends
        .iter()
        .all(|(partition, end)| positions.get(partition).is_some_and(|at| at + 1 >= *end))
        && started.elapsed() < CATCH_UP_WITHIN
    {
        match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            Ok(Ok(message)) => {
                positions.insert(message.partition(), message.offset());
                if take_in(message.payload(), origin, &recent, &metrics) {
                    learned += 1;
                }
            }
            Ok(Err(error)) => warn!(%error, "reading the used signatures"),
            Err(_) => {}
        }
    }
    let complete = ends
        .iter()
        .all(|(partition, end)| positions.get(partition).is_some_and(|at| at + 1 >= *end));
    if complete {
        info!(
            topic = %topic,
            learned,
            took_ms = started.elapsed().as_millis() as u64,
            "read the signatures used in the last window by this deployment's replicas"
        );
    } else {
        warn!(
            topic = %topic,
            learned,
            "the signatures used in the last window were not all read within 10 s (a flood of \
             the topic, or a slow Kafka): serving now, the rest is read while serving"
        );
    }
    metrics.set_used_signatures_shared(true);
    let follower = follow(consumer, origin, recent, metrics);
    Some((
        Arc::new(SignatureUseLog {
            producer,
            topic,
            origin,
        }),
        follower,
    ))
}

fn not_shared<T>(settings: &SharingSettings, error: &str) -> Option<T> {
    if !settings.report_failure {
        return None;
    }
    warn!(
        topic = %settings.topic,
        %error,
        "cannot read the used-signatures topic: this replica remembers the signatures it takes \
         itself only; trying again every 10 s (create the topic with `zego-kafka-bridge topics \
         --create`)"
    );
    None
}

/// Assigns every partition of `topic` from the first record of the window; returns each
/// partition's end (high watermark) now, to know when the start has read up to it.
fn assign_from(
    consumer: &StreamConsumer,
    topic: &str,
    window: Duration,
) -> Result<Vec<(i32, i64)>, String> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Timeout::After(Duration::from_secs(5)))
        .map_err(|error| error.to_string())?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|found| found.name() == topic && found.error().is_none())
        .flat_map(|found| found.partitions().iter().map(|partition| partition.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {topic} does not exist"));
    }
    let since = SystemTime::now()
        .checked_sub(window)
        .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_millis() as i64);
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted
            .add_partition_offset(topic, *partition, Offset::Offset(since))
            .map_err(|error| error.to_string())?;
    }
    let mut from = consumer
        .offsets_for_times(wanted, Timeout::After(Duration::from_secs(5)))
        .map_err(|error: KafkaError| error.to_string())?;
    // A partition with nothing since then starts at its end.
    let past_the_end: Vec<i32> = from
        .elements()
        .iter()
        .filter(|element| matches!(element.offset(), Offset::End | Offset::Invalid))
        .map(|element| element.partition())
        .collect();
    for partition in past_the_end {
        from.set_partition_offset(topic, partition, Offset::End)
            .map_err(|error| error.to_string())?;
    }
    consumer.assign(&from).map_err(|error| error.to_string())?;
    let mut ends = Vec::new();
    for start in from.elements() {
        let (low, high) = consumer
            .fetch_watermarks(
                topic,
                start.partition(),
                Timeout::After(Duration::from_secs(5)),
            )
            .map_err(|error| error.to_string())?;
        let end = high.max(low);
        // Only partitions with records since then are waited for.
        if let Offset::Offset(at) = start.offset() {
            if at < end {
                ends.push((start.partition(), end));
            }
        }
    }
    Ok(ends)
}

/// Follows the topic for as long as the bridge runs.
async fn follow(
    consumer: StreamConsumer,
    origin: Uuid,
    recent: Arc<RecentCallbacks>,
    metrics: Arc<Metrics>,
) {
    let mut failing = false;
    loop {
        match consumer.recv().await {
            Ok(message) => {
                if failing {
                    failing = false;
                    metrics.set_used_signatures_shared(true);
                    info!("following the used signatures again");
                }
                take_in(message.payload(), origin, &recent, &metrics);
            }
            Err(error) => {
                if !failing {
                    failing = true;
                    metrics.set_used_signatures_shared(false);
                    warn!(%error, "cannot follow the used signatures; replays on other replicas \
                        are not refused here until it works again");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Takes one record in; true when it was another process's use.
fn take_in(
    payload: Option<&[u8]>,
    origin: Uuid,
    recent: &RecentCallbacks,
    metrics: &Metrics,
) -> bool {
    let Some(record) = payload.and_then(|bytes| serde_json::from_slice::<UseRecord>(bytes).ok())
    else {
        return false;
    };
    if record.origin == origin {
        return false;
    }
    let Some(used) = record.to_use() else {
        return false;
    };
    match recent.remember_elsewhere(used) {
        Ok(held) => metrics.used_signatures(held.held, held.forgot_one),
        Err(conflict) => SignatureUsedTwice {
            event_id: used.event_id,
            first_event_id: conflict.first_event_id,
            respelled: conflict.respelled,
            log: conflict.first_conflict,
        }
        .emit(metrics),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a replica reads from the topic: its own uses and records that are not uses are
    /// skipped; another's use is remembered, and one that clashes with a use here is counted.
    #[test]
    fn only_another_replicas_uses_are_taken_in_and_a_clash_is_counted() {
        let recent = RecentCallbacks::new(10, Some(Duration::from_secs(601)));
        let metrics = Metrics::new();
        let (here, there) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let used = |event: u128| {
            RecentCallbacks::new(10, Some(Duration::from_secs(601)))
                .check_signature("1", "n", "abc", Uuid::from_u128(event))
                .unwrap()
                .first_use
                .unwrap()
        };
        let record = |used: &SignatureUse, origin: Uuid| {
            serde_json::to_vec(&UseRecord::of(used, origin)).unwrap()
        };
        for garbage in [&b"not json"[..], br#"{"key":"zz","spelling":"1","event_id":"00000000-0000-0000-0000-000000000009","origin":"00000000-0000-0000-0000-000000000002"}"#] {
            assert!(!take_in(Some(garbage), here, &recent, &metrics));
        }
        assert!(!take_in(None, here, &recent, &metrics));
        assert!(!take_in(
            Some(&record(&used(7), here)),
            here,
            &recent,
            &metrics
        ));
        assert!(
            recent
                .check_signature("1", "n", "abc", Uuid::from_u128(8))
                .is_ok(),
            "its own use was not taken in again"
        );

        let other = RecentCallbacks::new(10, Some(Duration::from_secs(601)));
        assert!(take_in(
            Some(&record(&used(9), there)),
            here,
            &other,
            &metrics
        ));
        assert!(
            other
                .check_signature("1", "n", "abc", Uuid::from_u128(10))
                .is_err(),
            "a replay here is refused"
        );
        assert!(metrics
            .render()
            .contains("zego_bridge_signature_conflicts_total 0"));
        assert!(take_in(
            Some(&record(&used(11), there)),
            here,
            &other,
            &metrics
        ));
        assert!(metrics
            .render()
            .contains("zego_bridge_signature_conflicts_total 1"));
    }
}
