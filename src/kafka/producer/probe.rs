//! Readiness: the cluster asked for its metadata (reachability, missing topics, a fatal producer
//! error).

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use tracing::{error, info, warn};

use super::*;

impl Publisher {
    /// Asks the cluster for its metadata and records reachability, missing topics and a fatal
    /// producer error. Blocks for up to `timeout`: call from a blocking thread.
    pub fn probe(&self, timeout: Duration) {
        let generation = self.generation.load_full();
        let health = &self.shared.health;
        let metrics = &self.shared.metrics;
        if let Some((code, reason)) = generation.producer.client().fatal_error() {
            if health.fatal_error().is_none() {
                error!(?code, %reason, "the Kafka producer hit a fatal error; rebuilding it");
            }
            health.set_fatal_error(format!("{code:?}: {reason}"));
            self.shared.rebuild.notify_one();
        }
        match generation
            .producer
            .client()
            .fetch_metadata(None, Timeout::After(timeout))
        {
            Ok(metadata) => {
                if health.mark_reachable() {
                    info!(brokers = metadata.brokers().len(), "Kafka is reachable");
                }
                let present: BTreeSet<&str> = metadata
                    .topics()
                    .iter()
                    .filter(|topic| topic.error().is_none())
                    .map(|topic| topic.name())
                    .collect();
                let wanted = self.options.topics.distinct();
                let missing: BTreeSet<String> = wanted
                    .iter()
                    .filter(|topic| !present.contains(topic.as_str()))
                    .cloned()
                    .collect();
                for topic in &wanted {
                    metrics.set_topic_missing(topic, missing.contains(topic));
                }
                if health.set_missing_topics(missing.clone(), wanted.len()) {
                    if missing.is_empty() {
                        info!("every configured topic exists");
                    } else {
                        let list: Vec<&str> = missing.iter().map(String::as_str).collect();
                        warn!(
                            missing = %list.join(", "),
                            "configured topics do not exist and the bridge does not create them; \
                             callbacks for them get 503 until they are created"
                        );
                    }
                }
            }
            Err(err) => {
                if health.mark_unreachable() {
                    warn!(error = %err, "Kafka is unreachable");
                }
            }
        }
        metrics.set_kafka_reachable(health.is_reachable());
    }
}
