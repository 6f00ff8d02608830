//! The producer's librdkafka configuration: safe defaults, then the user's properties.

use std::collections::BTreeMap;

use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

/// Defaults chosen for a bridge that must not lose or reorder what it acknowledged, and whose
/// queue must fit in a pod's memory. Any of them can be overridden with
/// `ZEGO_BRIDGE_LIBRDKAFKA_<PROPERTY>`.
pub struct ProducerDefaults;

impl ProducerDefaults {
    pub const PROPERTIES: &'static [(&'static str, &'static str)] = &[
        ("client.id", "zego-kafka-bridge"),
        // No duplicates from retries and per-partition order kept; implies acks=all.
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("compression.type", "lz4"),
        // Larger batches: measured +22 % callbacks/s and half the broker's CPU against 5 ms
        // (docs/BENCHMARKS.md). In ack mode delivered a request waits for its batch, so there
        // the bridge uses DELIVERED_LINGER_MS instead.
        ("linger.ms", "20"),
        // The queue is bounded by count and by bytes; when it is full callbacks get 503.
        ("queue.buffering.max.messages", "50000"),
        ("queue.buffering.max.kbytes", "32768"),
        // How long an accepted event may wait for Kafka before it counts as failed.
        ("message.timeout.ms", "300000"),
        // The producer's internals (per-broker round trips, requests, batches) become
        // zego_bridge_kafka_broker_* and _batch_* metrics at this pace; 0 turns them off.
        ("statistics.interval.ms", "15000"),
    ];

    /// `linger.ms` in ack mode `delivered`, where every request waits for its batch.
    pub const DELIVERED_LINGER_MS: &'static str = "5";
}

/// librdkafka properties given through the environment. They may hold SASL passwords or TLS
/// keys, so `Debug` shows only their names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LibrdkafkaProperties(pub BTreeMap<String, String>);

impl std::fmt::Debug for LibrdkafkaProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Who decided a producer property's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertySource {
    /// One of [`ProducerDefaults`].
    Bridge,
    /// What the ack mode needs ([`crate::configuration::AckMode::producer_defaults`]).
    AckMode,
    /// A `ZEGO_BRIDGE_LIBRDKAFKA_*` variable.
    User,
}

/// The producer's properties, but `bootstrap.servers`: the defaults, then those of the ack
/// mode, then the user's, each with who set it.
pub fn producer_properties(
    mode_defaults: &[(&str, &str)],
    overrides: &LibrdkafkaProperties,
) -> BTreeMap<String, (String, PropertySource)> {
    let mut properties = BTreeMap::new();
    let layers =
        ProducerDefaults::PROPERTIES
            .iter()
            .map(|(property, value)| (*property, *value, PropertySource::Bridge))
            .chain(
                mode_defaults
                    .iter()
                    .map(|(property, value)| (*property, *value, PropertySource::AckMode)),
            )
            .chain(overrides.0.iter().map(|(property, value)| {
                (property.as_str(), value.as_str(), PropertySource::User)
            }));
    for (property, value, source) in layers {
        properties.insert(property.to_owned(), (value.to_owned(), source));
    }
    properties
}

/// The configuration of the bridge's producer for these brokers: the defaults, then those of the
/// ack mode, then the user's properties.
pub fn producer_config(
    bootstrap_servers: &str,
    mode_defaults: &[(&str, &str)],
    overrides: &LibrdkafkaProperties,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    for (property, (value, _)) in producer_properties(mode_defaults, overrides) {
        config.set(property, value);
    }
    config
}

/// Whether a librdkafka property may hold a secret (a password, a private key, a token's
/// configuration): its value is never shown.
pub fn is_sensitive(property: &str) -> bool {
    [
        "password",
        "secret",
        "key.pem",
        "ssl_key",
        "oauthbearer.config",
        "jaas",
    ]
    .iter()
    .any(|marker| property.contains(marker))
}

/// Creates (and drops) the producer this configuration describes, without sending anything:
/// librdkafka checks the properties together only then (`acks` against `enable.idempotence`,
/// say), so a conflict stops the bridge before it serves rather than when it first publishes.
pub fn check_producer(
    config: &ClientConfig,
    overrides: &LibrdkafkaProperties,
) -> Result<(), PropertyError> {
    config
        .create::<rdkafka::producer::BaseProducer>()
        .map(drop)
        .map_err(|err| redacted_config_error(&err, overrides))
}

/// librdkafka's default `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room for a record's key, CloudEvents headers and batch framing within `message.max.bytes`.
const RECORD_OVERHEAD_BYTES: usize = 4096;

/// The largest event this producer takes: `message.max.bytes`, less room for the record's key
/// and headers. A larger one is refused with 413, never acknowledged and then lost.
pub fn max_event_bytes(config: &ClientConfig) -> usize {
    config
        .get("message.max.bytes")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES)
        .saturating_sub(RECORD_OVERHEAD_BYTES)
}

/// The producer queue's bound in events (`queue.buffering.max.messages`).
pub fn queue_capacity(config: &ClientConfig) -> Option<i64> {
    config
        .get("queue.buffering.max.messages")
        .and_then(|value| value.parse().ok())
}

/// Checks the user's librdkafka properties as librdkafka itself reads them (unknown names,
/// invalid values), so that a mistake stops the bridge before it starts. On error: the property
/// and what is wrong with it, never its value (it may be a password).
pub fn check_properties(properties: &LibrdkafkaProperties) -> Result<(), PropertyError> {
    let mut config = ClientConfig::new();
    for (property, value) in &properties.0 {
        config.set(property, value);
    }
    match config.create_native_config() {
        Ok(_) => Ok(()),
        Err(err) => Err(redacted_config_error(&err, properties)),
    }
}

/// What librdkafka refuses in a configuration, safe to show: any configured value is cut out
/// of the reason (it may be a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", property.as_deref().map(|property| format!("`{property}`: ")).unwrap_or_default())]
pub struct PropertyError {
    /// The property librdkafka names, if it names one.
    pub property: Option<String>,
    pub reason: String,
}

/// A librdkafka configuration error, redacted.
pub fn redacted_config_error(err: &KafkaError, properties: &LibrdkafkaProperties) -> PropertyError {
    let (property, mut reason) = match err {
        KafkaError::ClientConfig(_, reason, property, _) => (
            Some(property.clone()).filter(|property| !property.is_empty()),
            reason.clone(),
        ),
        // librdkafka's checks of properties together name the property in the message:
        // "`acks` must be set to `all` when `enable.idempotence` is true".
        KafkaError::ClientCreation(reason) => (
            properties
                .0
                .keys()
                .find(|property| reason.contains(&format!("`{property}`")))
                .cloned(),
            reason.clone(),
        ),
        other => (None, other.to_string()),
    };
    for value in properties.0.values().filter(|value| value.len() >= 2) {
        reason = reason.replace(value.as_str(), "<redacted>");
    }
    PropertyError { property, reason }
}
