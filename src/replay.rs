//! `zego-kafka-bridge replay FILE`: publishes the events of a dead-letter file again, to the
//! topics, keys and headers they had; with a schema registry configured, in its wire format,
//! each type's schema registered under its topic's subject first.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::configuration::{kafka_client_from_env, schema_registry_from_env};
use crate::kafka::{
    framed, kind_of_headers, owned_headers, producer_config, subject_of, DeadLetter,
    DeadLetterFile, RegistryClient,
};

/// How long `replay` waits for Kafka's metadata before it gives up without sending anything.
const REACH_KAFKA_WITHIN_SECS: u64 = 10;

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
    // Each send waits for Kafka up to its delivery timeout (minutes): with Kafka away, a replay
    // would print nothing for that long per letter. One look first says so at once.
    let probe = producer.clone();
    tokio::task::spawn_blocking(move || {
        probe
            .client()
            .fetch_metadata(None, Duration::from_secs(REACH_KAFKA_WITHIN_SECS))
    })
    .await
    .map_err(|err| format!("the Kafka probe failed: {err}"))?
    .map_err(|err| {
        format!(
            "cannot reach Kafka at {brokers} within {REACH_KAFKA_WITHIN_SECS} s ({err}): nothing \
             was replayed; check ZEGO_BRIDGE_KAFKA_BROKERS and the cluster, then run it again"
        )
    })?;
    let registry = schema_registry_from_env()
        .map_err(|err| err.to_string())?
        .map(|settings| RegistryClient::new(settings).map_err(|err| err.to_string()))
        .transpose()?;
    let mut schema_ids: HashMap<(String, &'static str), u32> = HashMap::new();
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
        let value = match &registry {
            None => letter.event.get().as_bytes().to_vec(),
            Some(registry) => match schema_id(registry, &mut schema_ids, &letter).await {
                Ok(id) => framed(id, letter.event.get().as_bytes()),
                Err(err) => {
                    report.failed += 1;
                    on_failure(&format!(
                        "event {} to {}: {err}",
                        id_of(&letter),
                        letter.topic
                    ));
                    continue;
                }
            },
        };
        let mut record = FutureRecord::to(&letter.topic)
            .payload(&value)
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
                on_failure(&format!(
                    "event {} to {}: {err}",
                    id_of(&letter),
                    letter.topic
                ));
            }
        }
    }
    Ok(report)
}

/// The schema id of a letter's type under its topic's subject, registered on first use.
async fn schema_id(
    registry: &RegistryClient,
    known: &mut HashMap<(String, &'static str), u32>,
    letter: &DeadLetter,
) -> Result<u32, String> {
    let kind = kind_of_headers(
        letter
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
    .ok_or("its ce_type header names no event type, so its schema is unknown")?;
    let key = (letter.topic.clone(), kind.name);
    if let Some(id) = known.get(&key) {
        return Ok(*id);
    }
    let id = registry
        .register(&subject_of(&letter.topic), kind)
        .await
        .map_err(|err| err.to_string())?;
    known.insert(key, id);
    Ok(id)
}

fn id_of(letter: &DeadLetter) -> &str {
    letter.headers.get("ce_id").map_or("?", String::as_str)
}
