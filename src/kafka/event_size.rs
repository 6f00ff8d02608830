//! The largest event Kafka can take, per topic: what the producer takes (`message.max.bytes`)
//! and what each topic takes (its `max.message.bytes`, learned from the cluster at start and
//! again every minute). An event above either is answered 413 before it is acknowledged: past
//! the producer's, librdkafka refuses it at once; past a topic's, the broker refuses it even
//! alone, and an acknowledged event would only reach the dead-letter file's `.rejected`.
//!
//! A topic's limit applies to a record batch as the broker stores it, compressed. So the
//! check is on the smallest size the event can take there: its lz4 block (the producer's
//! default codec; the frame librdkafka writes is larger, never smaller) or, with
//! `compression.type=none`, its bytes. With another codec (zstd or gzip may compress better
//! than lz4) the bridge cannot tell for certain, and does not refuse: when unsure, an event is
//! taken. An event refused by its topic after all is sent alone and kept in `.rejected`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use tracing::warn;

use super::config::{max_event_bytes, LibrdkafkaProperties};
use super::topics::TopicMap;
use crate::metrics::Metrics;

/// A record batch's own header, outside its compressed records (Kafka's record batch v2).
const BATCH_HEADER_BYTES: usize = 61;
/// What a record adds to its key, value and headers besides their lengths and its own:
/// attributes, timestamp and offset deltas and header count, one byte each at least.
const RECORD_FIXED_BYTES: usize = 4;

/// The bytes of `n` as a zig-zag varint, as record batches write lengths.
pub fn varint_bytes(n: usize) -> usize {
    let mut zigzag = (n as u64) << 1;
    let mut bytes = 1;
    while zigzag >= 0x80 {
        zigzag >>= 7;
        bytes += 1;
    }
    bytes
}
/// The least an lz4 frame adds to its blocks: magic number, frame descriptor, one block's
/// size and the end mark.
const LZ4_FRAME_BYTES: usize = 15;

/// Why an event cannot be published, whatever is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTooLarge {
    #[error("the event would be {size} bytes, more than the {limit} bytes Kafka's producer takes (message.max.bytes): no retry can deliver it")]
    ForProducer { size: usize, limit: usize },
    #[error("the event would be {size} bytes ({stored} compressed, at least), more than topic {topic} takes (max.message.bytes {limit}): no retry can deliver it")]
    ForTopic {
        topic: String,
        size: usize,
        stored: usize,
        limit: usize,
    },
}

/// How the producer compresses, as far as the smallest stored size can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// `compression.type=none`: as it is.
    AsIs,
    /// lz4: at least its lz4 block.
    Lz4,
    /// Another codec: unknown.
    Unknown,
}

#[derive(Debug)]
pub struct EventSizeLimits {
    producer: usize,
    stored: Stored,
    /// Bytes put before each value on the way out (a schema registry's wire format: 5).
    value_prefix: usize,
    /// Each event type's topic and its `max.message.bytes`, as last learned; none at first.
    topics: ArcSwap<HashMap<&'static str, (Arc<str>, usize)>>,
}

impl EventSizeLimits {
    /// The limits of the producer `config` describes; no topic's limit known yet.
    pub fn new(config: &ClientConfig) -> Self {
        let stored = match config.get("compression.type").unwrap_or("none") {
            "none" => Stored::AsIs,
            "lz4" => Stored::Lz4,
            _ => Stored::Unknown,
        };
        EventSizeLimits {
            producer: max_event_bytes(config),
            stored,
            value_prefix: 0,
            topics: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// The same, for values sent with `bytes` before them (a schema registry's wire format).
    pub fn with_value_prefix(self, bytes: usize) -> Self {
        EventSizeLimits {
            value_prefix: bytes,
            ..self
        }
    }

    /// Replaces what is known of the topics' `max.message.bytes` (`limits`, by topic) for the
    /// types `topics` maps to them.
    pub fn learn(&self, topics: &TopicMap, limits: &HashMap<String, usize>) {
        let by_type = topics
            .iter()
            .filter_map(|(kind, topic)| {
                let limit = *limits.get(topic.as_ref())?;
                Some((kind.name, (topic.clone(), limit)))
            })
            .collect();
        self.topics.store(Arc::new(by_type));
    }

    /// Whether an event of type `kind` (its catalog name), value `payload` and `framing` bytes of
    /// key and headers ([`record_framing_bytes`](super::record_framing_bytes)) can ever be
    /// published. Every overhead is counted at its least, so that an event is refused only when
    /// it cannot fit. Costs nothing for an event within its topic's limit uncompressed; an lz4
    /// pass (a few µs per 100 KiB) above.
    pub fn check(&self, kind: &str, payload: &[u8], framing: usize) -> Result<(), EventTooLarge> {
        let size = payload.len();
        if size > self.producer {
            return Err(EventTooLarge::ForProducer {
                size,
                limit: self.producer,
            });
        }
        let topics = self.topics.load();
        let Some((topic, limit)) = topics.get(kind) else {
            return Ok(());
        };
        let limit = *limit;
        // A record of this value as it goes out, uncompressed: its lengths are varints.
        let value = size + self.value_prefix;
        let body = RECORD_FIXED_BYTES + framing + varint_bytes(value) + value;
        let record = varint_bytes(body) + body;
        if BATCH_HEADER_BYTES + record <= limit {
            return Ok(());
        }
        let stored = match self.stored {
            Stored::AsIs => record,
            // The least lz4 can make of it: the value as one block (librdkafka's frame has
            // blocks of 64 KiB and more framing, so it is never smaller), the rest as it is.
            Stored::Lz4 => {
                record - value
                    + self.value_prefix
                    + lz4_flex::block::compress(payload).len()
                    + LZ4_FRAME_BYTES
            }
            Stored::Unknown => return Ok(()),
        };
        if BATCH_HEADER_BYTES + stored <= limit {
            return Ok(());
        }
        Err(EventTooLarge::ForTopic {
            topic: topic.to_string(),
            size,
            stored,
            limit,
        })
    }
}

/// Reads each of `topics`' `max.message.bytes` from the cluster (one request). Topics the
/// cluster does not describe are left out.
pub async fn learn_topic_limits(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[String],
) -> Result<HashMap<String, usize>, String> {
    let resources: Vec<ResourceSpecifier<'_>> = topics
        .iter()
        .map(|topic| ResourceSpecifier::Topic(topic))
        .collect();
    let described = admin
        .describe_configs(
            &resources,
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|err| err.to_string())?;
    Ok(topics
        .iter()
        .zip(described)
        .filter_map(|(topic, result)| {
            let limit = result
                .ok()?
                .get("max.message.bytes")?
                .value
                .as_deref()?
                .parse()
                .ok()?;
            Some((topic.clone(), limit))
        })
        .collect())
}

/// Learns the topics' `max.message.bytes` at start and again every minute (an operator may
/// change a topic's limit while the bridge runs).
pub struct TopicLimitLearner {
    /// An admin client is made for each reading and dropped after: a client kept for a request
    /// a minute would hold its threads and buffers (some MiB) all the while.
    admin: ClientConfig,
    topics: TopicMap,
    limits: Arc<EventSizeLimits>,
    metrics: Arc<Metrics>,
}

impl TopicLimitLearner {
    /// An admin client with the user's librdkafka properties (TLS, SASL) to `brokers`.
    pub fn new(
        brokers: &str,
        properties: &LibrdkafkaProperties,
        topics: TopicMap,
        limits: Arc<EventSizeLimits>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut config = ClientConfig::new();
        for (key, value) in &properties.0 {
            config.set(key, value);
        }
        config.set("bootstrap.servers", brokers);
        config.create::<AdminClient<DefaultClientContext>>()?;
        Ok(TopicLimitLearner {
            admin: config,
            topics,
            limits,
            metrics,
        })
    }

    /// Learns once; `Err` with why when the cluster did not answer (what was known stays).
    pub async fn learn(&self) -> Result<usize, String> {
        let admin: AdminClient<DefaultClientContext> =
            self.admin.create().map_err(|error| error.to_string())?;
        let limits = learn_topic_limits(&admin, &self.topics.distinct()).await?;
        self.limits.learn(&self.topics, &limits);
        for (topic, bytes) in &limits {
            self.metrics.set_topic_max_message_bytes(topic, *bytes);
        }
        Ok(limits.len())
    }

    /// Learns every `every`; a failure is logged once until it works again.
    pub async fn run(self, every: Duration) {
        let mut failing = false;
        loop {
            tokio::time::sleep(every).await;
            match self.learn().await {
                Ok(_) => failing = false,
                Err(error) if !failing => {
                    failing = true;
                    warn!(%error, "could not read the topics' max.message.bytes; keeping what was known");
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(compression: &str, topic_limit: usize) -> EventSizeLimits {
        let mut config = ClientConfig::new();
        config
            .set("compression.type", compression)
            .set("message.max.bytes", "1000000");
        let limits = EventSizeLimits::new(&config);
        let topics = TopicMap::new("p", &[]).unwrap();
        let (kind, topic) = topics
            .iter()
            .find(|(kind, _)| kind.name == "room.closed")
            .unwrap();
        assert_eq!(kind.name, "room.closed");
        limits.learn(&topics, &[(topic.to_string(), topic_limit)].into());
        limits
    }

    /// Bytes lz4 cannot shrink.
    fn noise(bytes: usize) -> Vec<u8> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..bytes)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn lengths_are_counted_as_varints() {
        assert_eq!(varint_bytes(0), 1);
        assert_eq!(varint_bytes(63), 1);
        assert_eq!(varint_bytes(64), 2);
        assert_eq!(varint_bytes(8191), 2);
        assert_eq!(varint_bytes(8192), 3);
    }

    #[test]
    fn an_event_is_refused_only_when_it_cannot_fit_its_topic_however_it_is_stored() {
        let compressible = vec![b'a'; 100_000];
        let incompressible = noise(100_000);
        let lz4 = limits("lz4", 65_536);
        assert_eq!(
            lz4.check("room.closed", &compressible, 0),
            Ok(()),
            "lz4 stores it small"
        );
        assert!(matches!(
            lz4.check("room.closed", &incompressible, 0),
            Err(EventTooLarge::ForTopic {
                limit: 65_536,
                size: 100_000,
                ..
            })
        ));
        assert_eq!(
            lz4.check("room.closed", &incompressible[..60_000], 0),
            Ok(())
        );
        assert_eq!(
            lz4.check("room.opened", &incompressible, 0),
            Ok(()),
            "limit unknown"
        );
        let none = limits("none", 65_536);
        assert!(
            none.check("room.closed", &compressible, 0).is_err(),
            "stored as it is"
        );
        // The key, headers and every length count: a value that fits only without them is
        // refused; one byte less fits. 65,536 less the batch header (61), the fixed bytes (4),
        // 300 of key and headers with their lengths, the value's length (3 bytes) and the
        // record's (3 bytes).
        let fits = 65_536 - 61 - 4 - 300 - 3 - 3;
        assert_eq!(
            none.check("room.closed", &incompressible[..fits], 300),
            Ok(())
        );
        assert!(none
            .check("room.closed", &incompressible[..fits + 1], 300)
            .is_err());
        let framed = limits("none", 65_536).with_value_prefix(5);
        framed.learn(
            &TopicMap::new("p", &[]).unwrap(),
            &[("p.room.closed".to_owned(), 65_536)].into(),
        );
        assert!(
            framed
                .check("room.closed", &incompressible[..fits], 300)
                .is_err(),
            "a schema registry's five bytes count"
        );
        let zstd = limits("zstd", 65_536);
        assert_eq!(
            zstd.check("room.closed", &incompressible, 0),
            Ok(()),
            "unsure: taken"
        );
        assert!(matches!(
            zstd.check("room.closed", &noise(1_000_000), 0),
            Err(EventTooLarge::ForProducer { limit: 995_904, .. })
        ));
    }
}
