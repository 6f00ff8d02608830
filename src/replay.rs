//! `zego-kafka-bridge replay FILE`: publishes the events of a dead-letter file again, to the
//! topics, keys and headers they had.

use std::path::Path;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::configuration::kafka_client_from_env;
use crate::kafka::{owned_headers, producer_config, DeadLetterFile};

/// What a replay achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub published: usize,
    pub failed: usize,
    pub unreadable: usize,
}

/// Publishes every line of `path` and waits for Kafka's acknowledgement of each.
pub async fn replay(path: &Path, mut on_failure: impl FnMut(&str)) -> Result<ReplayReport, String> {
    let (brokers, properties) = kafka_client_from_env().map_err(|err| err.to_string())?;
    let producer: FutureProducer = producer_config(&brokers, &[], &properties)
        .create()
        .map_err(|err| format!("cannot create the Kafka producer: {err}"))?;
    let letters = DeadLetterFile::read(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mut report = ReplayReport::default();
    for letter in letters {
        let letter = match letter {
            Ok(letter) => letter,
            Err(err) => {
                report.unreadable += 1;
                on_failure(&err);
                continue;
            }
        };
        let mut record = FutureRecord::to(&letter.topic)
            .payload(letter.event.get())
            .headers(owned_headers(letter.headers.iter()));
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        match producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
        {
            Ok(_) => report.published += 1,
            Err((err, _)) => {
                report.failed += 1;
                let id = letter.headers.get("ce_id").map_or("?", String::as_str);
                on_failure(&format!("event {id} to {}: {err}", letter.topic));
            }
        }
    }
    Ok(report)
}
