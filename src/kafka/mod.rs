//! Publishing to Kafka: topic names, producer configuration, record encoding, the producer with
//! its delivery accounting and health, and the embedded cluster for a first run.

mod config;
mod embedded;
mod health;
mod publisher;
mod record;
mod topics;

pub use config::{producer_config, ProducerDefaults};
pub use embedded::EmbeddedCluster;
pub use health::KafkaHealth;
pub use publisher::{PublishError, Publisher};
pub use record::{headers_for, CONTENT_TYPE};
pub use topics::TopicMap;
