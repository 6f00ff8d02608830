//! Creating the bridge's topics: `zego-kafka-bridge topics --create`, the compose file's one-shot
//! job and the Helm chart's optional hook all go through here, so they create exactly the topics
//! the service will publish to.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::configuration::LibrdkafkaProperties;

/// What became of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicCreation {
    Created,
    AlreadyExists,
    Failed(String),
}

/// The shape of new topics.
#[derive(Debug, Clone, Copy)]
pub struct TopicLayout {
    pub partitions: i32,
    pub replication_factor: i32,
}

/// Creates each of `names` that does not exist yet. The connection uses the same librdkafka
/// properties as the producer, so TLS and SASL clusters work the same way.
pub async fn create_topics(
    brokers: &str,
    properties: &LibrdkafkaProperties,
    names: &[String],
    layout: TopicLayout,
) -> Result<Vec<(String, TopicCreation)>, String> {
    let mut config = ClientConfig::new();
    for (key, value) in &properties.0 {
        config.set(key, value);
    }
    config.set("bootstrap.servers", brokers);
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|err| format!("cannot create a Kafka admin client: {err}"))?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                layout.partitions,
                TopicReplication::Fixed(layout.replication_factor),
            )
        })
        .collect();
    let results = admin
        .create_topics(
            &topics,
            &AdminOptions::new()
                .operation_timeout(Some(Duration::from_secs(30)))
                .request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(|err| format!("Kafka refused the request to create topics: {err}"))?;
    Ok(results
        .into_iter()
        .map(|result| match result {
            Ok(name) => (name, TopicCreation::Created),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                (name, TopicCreation::AlreadyExists)
            }
            Err((name, code)) => (name, TopicCreation::Failed(code.to_string())),
        })
        .collect())
}
