//! Creating the bridge's topics: `zego-kafka-bridge topics --create`, the compose file's one-shot
//! job and the Helm chart's optional hook all go through here, so they create exactly the topics
//! the service will publish to.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::config::LibrdkafkaProperties;

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
    create_topics_with(brokers, properties, names, layout, &[]).await
}

/// As [`create_topics`], each new topic with these topic-level settings (`retention.ms`, say).
pub async fn create_topics_with(
    brokers: &str,
    properties: &LibrdkafkaProperties,
    names: &[String],
    layout: TopicLayout,
    settings: &[(&str, &str)],
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
            settings.iter().fold(
                NewTopic::new(
                    name,
                    layout.partitions,
                    TopicReplication::Fixed(layout.replication_factor),
                ),
                |topic, (key, value)| topic.set(key, value),
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
        .map_err(|err| create_topics_failure(brokers, &err))?;
    let outcomes: Vec<(String, TopicCreation)> = results
        .into_iter()
        .map(|result| match result {
            Ok(name) => (name, TopicCreation::Created),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                (name, TopicCreation::AlreadyExists)
            }
            Err((name, code)) => (name, TopicCreation::Failed(code.to_string())),
        })
        .collect();
    let created: Vec<String> = outcomes
        .iter()
        .filter(|(_, outcome)| *outcome == TopicCreation::Created)
        .map(|(name, _)| name.clone())
        .collect();
    wait_until_served(admin, created).await?;
    Ok(outcomes)
}

/// What a failed CreateTopics request means to the person who ran it: no answer in time is not
/// a refusal (it was reported as "Kafka refused" and sent people to their ACLs).
fn create_topics_failure(brokers: &str, err: &rdkafka::error::KafkaError) -> String {
    // An admin operation's own error carries its code apart (`rdkafka_error_code` is `None`).
    let code = match err {
        rdkafka::error::KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    let unanswered = matches!(
        code,
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
        )
    );
    if unanswered {
        format!(
            "no answer from Kafka at {brokers} to the request to create topics within 30 s \
             ({err}): check ZEGO_BRIDGE_KAFKA_BROKERS, the network and the cluster, then run \
             it again"
        )
    } else {
        format!("Kafka refused the request to create topics: {err}")
    }
}

/// How long new topics may take to be served by every broker.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until every partition of `names` has a leader in the cluster's metadata. Apache Kafka
/// answers CreateTopics once the controller has recorded them; brokers learn of them a moment
/// later, and a producer started in between would find the topics missing.
async fn wait_until_served(
    admin: AdminClient<DefaultClientContext>,
    names: Vec<String>,
) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        loop {
            let metadata = admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(5))
                .map_err(|err| format!("cannot read the cluster's metadata: {err}"))?;
            let pending: Vec<&String> = names
                .iter()
                .filter(|name| {
                    !metadata.topics().iter().any(|topic| {
                        topic.name() == name.as_str()
                            && topic.error().is_none()
                            && !topic.partitions().is_empty()
                            && topic.partitions().iter().all(|p| p.leader() >= 0)
                    })
                })
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if started.elapsed() > PROPAGATION_TIMEOUT {
                return Err(format!(
                    "created, but not served by the brokers after {PROPAGATION_TIMEOUT:?}: {pending:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .map_err(|err| format!("waiting for new topics: {err}"))?
}

#[cfg(test)]
mod failure_tests {
    use super::*;
    use rdkafka::error::KafkaError;

    /// A timeout was reported as "Kafka refused the request", which sent people to their ACLs.
    #[test]
    fn no_answer_is_not_called_a_refusal() {
        let timeout = create_topics_failure(
            "kafka:9092",
            &KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut),
        );
        assert!(
            timeout.starts_with("no answer from Kafka at kafka:9092")
                && !timeout.contains("refused"),
            "{timeout}"
        );
        let refusal = create_topics_failure(
            "kafka:9092",
            &KafkaError::AdminOp(RDKafkaErrorCode::ClusterAuthorizationFailed),
        );
        assert!(refusal.starts_with("Kafka refused"), "{refusal}");
    }
}
