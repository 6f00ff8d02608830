//! Kafka for the tests: the broker, topics, reading records back, the mock cluster.

use super::*;

pub const PARTITIONS: i32 = 3;

pub fn brokers() -> String {
    std::env::var("ZEGO_BRIDGE_TEST_BROKERS").unwrap_or_else(|_| {
        panic!(
            "ZEGO_BRIDGE_TEST_BROKERS is not set: the integration tests need a Kafka-compatible \
             broker. Run them with `scripts/test`, which starts one."
        )
    })
}

/// A fresh topic prefix: `t` and 12 random hex digits.
pub fn unique_prefix() -> String {
    format!("t{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Creates the topics of RTC's event types (with Cloud Recording's) under `prefix` on the test
/// broker: what most tests need, at a third of the cost of every product's.
pub async fn create_topics(prefix: &str) {
    create_topics_of(&brokers(), prefix, |kind| {
        matches!(kind.product, Product::Rtc | Product::CloudRecording)
    })
    .await;
}

/// Creates every event type's topic, of every product, under `prefix` on the test broker.
pub async fn create_all_topics(prefix: &str) {
    create_topics_on(&brokers(), prefix).await;
}

/// A record read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub value: Json,
    /// The schema id of a value in a schema registry's wire format; `None` for plain JSON.
    pub schema_id: Option<u32>,
}

/// Reads every record of `topic` from the beginning until `count` have arrived or `wait`
/// has passed since the last one.
pub async fn consume(topic: &str, count: usize, wait: Duration) -> Vec<Record> {
    consume_from(&brokers(), topic, count, wait).await
}

pub async fn consume_from(
    bootstrap: &str,
    topic: &str,
    count: usize,
    wait: Duration,
) -> Vec<Record> {
    consume_until(bootstrap, topic, wait, |records| records.len() >= count).await
}

/// Reads every record of `topic` from the beginning until `done` says so or `wait` has passed
/// since the last one.
pub async fn consume_until(
    bootstrap: &str,
    topic: &str,
    wait: Duration,
    done: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    consume_partitions(bootstrap, topic, PARTITIONS, wait, done).await
}

/// Reads `count` records of a topic of the mock cluster, whose topics have one partition.
pub async fn consume_mock(
    bootstrap: &str,
    topic: &str,
    count: usize,
    wait: Duration,
) -> Vec<Record> {
    consume_partitions(bootstrap, topic, 1, wait, |records| records.len() >= count).await
}

async fn consume_partitions(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    wait: Duration,
    done: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", unique_prefix()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Small fetches come back sooner from a slow broker than one huge first fetch.
        .set("max.partition.fetch.bytes", "262144")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    // `done` may look at every record: ask it only when the topic pauses, or every 1,000.
    let mut quiet = Duration::ZERO;
    let pause = Duration::from_millis(100);
    loop {
        let message = match tokio::time::timeout(pause, consumer.recv()).await {
            Ok(message) => message.expect("consume"),
            Err(_) => {
                if done(&records) {
                    break;
                }
                quiet += pause;
                if quiet >= wait {
                    break;
                }
                continue;
            }
        };
        quiet = Duration::ZERO;
        let payload = message.payload().expect("a value");
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        (
                            header.key.to_owned(),
                            String::from_utf8(header.value.unwrap_or_default().to_vec()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            key: message
                .key()
                .map(|key| String::from_utf8(key.to_vec()).unwrap()),
            headers,
            value: serde_json::from_slice(kafka::json_of(payload)).expect("JSON value"),
            schema_id: schema_id_of(payload),
        });
        if records.len() % 1000 == 0 && done(&records) {
            break;
        }
    }
    records
}

/// Creates every event type's topic under `prefix` with `replication` replicas each.
pub async fn create_replicated_topics(bootstrap: &str, prefix: &str, replication: i32) {
    let names: Vec<String> = catalog::ALL
        .iter()
        .map(|kind| format!("{prefix}.{}", kind.name))
        .collect();
    let layout = zego_kafka_bridge::kafka::TopicLayout {
        partitions: PARTITIONS,
        replication_factor: replication,
    };
    let outcomes =
        zego_kafka_bridge::kafka::create_topics(bootstrap, &Default::default(), &names, layout)
            .await
            .expect("topics created");
    for (name, outcome) in outcomes {
        assert_eq!(
            outcome,
            zego_kafka_bridge::kafka::TopicCreation::Created,
            "{name}"
        );
    }
}

/// Creates the topics of `products`' event types under `prefix` on the test broker.
pub async fn create_topics_of_products(prefix: &str, products: &[Product]) {
    create_topics_of(&brokers(), prefix, |kind| products.contains(&kind.product)).await;
}

/// Creates every event type's topic under `prefix` on the given brokers.
pub async fn create_topics_on(bootstrap: &str, prefix: &str) {
    create_topics_of(bootstrap, prefix, |_| true).await;
}

async fn create_topics_of(bootstrap: &str, prefix: &str, wanted: impl Fn(&EventType) -> bool) {
    let map = TopicMap::new(prefix, &[]).expect("a valid prefix");
    let mut names: Vec<String> = map
        .iter()
        .filter(|(kind, _)| wanted(kind))
        .map(|(_, topic)| topic.to_string())
        .collect();
    names.dedup();
    let layout = TopicLayout {
        partitions: PARTITIONS,
        replication_factor: 1,
    };
    let outcomes = kafka::create_topics(bootstrap, &Default::default(), &names, layout)
        .await
        .expect("topics created");
    for (name, outcome) in outcomes {
        assert!(
            !matches!(outcome, TopicCreation::Failed(_)),
            "{name}: {outcome:?}"
        );
    }
}

/// librdkafka's in-process mock cluster with one broker and every type's topic under `prefix`
/// (one partition each). Not `Send`: keep it on the test's own stack.
pub fn mock_cluster(
    prefix: &str,
) -> rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    for kind in catalog::ALL.iter() {
        cluster
            .create_topic(&format!("{prefix}.{}", kind.name), 1, 1)
            .expect("mock topic");
    }
    cluster
}

/// The schema id of a value in the Confluent wire format (byte 0, the id in 4 bytes, the JSON).
pub fn schema_id_of(value: &[u8]) -> Option<u32> {
    match value {
        [0, id @ ..] if id.len() >= 4 => Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]])),
        _ => None,
    }
}

/// Sets `topic`'s `max.message.bytes` on the test broker and waits until the broker serves it
/// (it applies a change a moment after it answered).
pub async fn limit_topic_to(topic: &str, bytes: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    let admin: AdminClient<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let value = bytes.to_string();
    let altered = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", &value)],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(altered.iter().all(Result::is_ok), "{altered:?}");
    for _ in 0..100 {
        let described = admin
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
            .await
            .unwrap();
        let limit = described[0]
            .as_ref()
            .ok()
            .and_then(|config| config.get("max.message.bytes")?.value.clone());
        if limit.as_deref() == Some(value.as_str()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broker never served max.message.bytes {value} for {topic}");
}

/// Waits until `app` has read `topic`'s `max.message.bytes` as `bytes`.
pub async fn wait_for_topic_limit(app: &TestApp, topic: &str, bytes: usize) {
    let learned =
        format!(r#"zego_bridge_kafka_topic_max_message_bytes{{topic="{topic}"}} {bytes}"#);
    for _ in 0..100 {
        if app.metrics().await.contains(&learned) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bridge never read {topic}'s limit of {bytes}");
}
