//! Publishing to Kafka: topic names and their creation, producer configuration, record encoding
//! (with a schema registry's wire format when one is configured), the producer with its delivery
//! accounting, dead letters and health, and the embedded cluster for a first run.

mod admin;
mod config;
mod dead_letter;
mod embedded;
mod event_size;
mod health;
mod producer;
mod record;
mod redrive;
mod schema_registry;
mod topics;
mod used_signatures;

pub use admin::{create_topics, create_topics_with, TopicCreation, TopicLayout};
pub use config::{
    check_producer, check_properties, is_sensitive, max_event_bytes, producer_config,
    producer_properties, queue_capacity, redacted_config_error, LibrdkafkaProperties,
    ProducerDefaults, PropertyError, PropertySource,
};
pub use dead_letter::{
    append_lines, beside, is_claim_name, sync_directory, DeadLetter, DeadLetterFile,
    DeadLetterLock, DeadLetterLockError, DeadLetterWriter, Undeliverable,
};
pub use embedded::EmbeddedCluster;
pub use event_size::{EventSizeLimits, EventTooLarge, TopicLimitLearner};
pub use health::{KafkaHealth, ProbeSchedule};
pub use producer::{
    DeliveryFailure, DeliveryOutcomeReport, PublishError, Publisher, PublisherOptions,
};
pub use record::{
    header_pairs, headers_for, owned_headers, record_framing_bytes, OutgoingRecord, CONTENT_TYPE,
};
pub use redrive::{DeadLetterRetrier, RetryReport};
pub use schema_registry::{
    framed, json_of, kind_of_headers, read_ca_file, register_topics, subject_of, RegistryClient,
    RegistryError, RegistrySettings, SchemaIds,
};
pub use topics::{TopicError, TopicMap};
pub use used_signatures::{start_sharing, SharingSettings, SignatureUseLog};
