//! The test harness: the real application on port 0 against a real Kafka-compatible broker.
//!
//! The broker comes from `ZEGO_BRIDGE_TEST_BROKERS`, which `scripts/test` sets after starting
//! one. Every test gets its own topic prefix, so tests run in parallel without seeing each
//! other's events.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value as Json;
use tokio::task::JoinHandle;

use zego_kafka_bridge::configuration::Settings;
use zego_kafka_bridge::event::catalog;
use zego_kafka_bridge::sender::{self, SignedCallback, Signing};
use zego_kafka_bridge::startup::{Application, ShutdownHandle, ShutdownReport};

pub const SECRET: &str = "test-secret";
pub const APP_SECRET: &str = "app-4242-secret";
pub const PARTITIONS: i32 = 3;

pub fn brokers() -> String {
    std::env::var("ZEGO_BRIDGE_TEST_BROKERS").unwrap_or_else(|_| {
        panic!(
            "ZEGO_BRIDGE_TEST_BROKERS is not set: the integration tests need a Kafka-compatible \
             broker. Run them with `scripts/test`, which starts one."
        )
    })
}

pub struct TestApp {
    pub callbacks_url: String,
    pub admin_url: String,
    pub prefix: String,
    pub client: reqwest::Client,
    shutdown: ShutdownHandle,
    task: Option<JoinHandle<std::io::Result<ShutdownReport>>>,
}

/// A fresh topic prefix: `t` and 12 random hex digits.
pub fn unique_prefix() -> String {
    format!("t{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Creates every event type's topic under `prefix` on the test broker.
pub async fn create_topics(prefix: &str) {
    create_topics_on(&brokers(), prefix).await;
}

/// Starts the bridge on port 0 with every topic created, the test secrets and `extra` settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    spawn_app_on(&prefix, &brokers(), extra).await
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_on(prefix: &str, brokers: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: HashMap<String, String> = [
        ("ZEGO_BRIDGE_LISTEN_ADDR", "127.0.0.1:0"),
        ("ZEGO_BRIDGE_ADMIN_ADDR", "127.0.0.1:0"),
        ("ZEGO_BRIDGE_KAFKA_BROKERS", brokers),
        (
            "ZEGO_BRIDGE_CALLBACK_SECRETS",
            &format!("{SECRET},4242={APP_SECRET}"),
        ),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix),
        ("ZEGO_BRIDGE_HTTP_WORKERS", "2"),
        ("ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS", "5000"),
        // Never the default, which is relative to the working directory: the repository.
        (
            "ZEGO_BRIDGE_DEAD_LETTER_PATH",
            scratch_file("dead-letter.jsonl").to_str().unwrap(),
        ),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    for (name, value) in extra {
        vars.insert(name.to_string(), value.to_string());
    }
    init_logs();
    let settings = Settings::from_vars(vars).expect("valid test settings");
    let application = Application::build(settings)
        .await
        .expect("application starts");
    let callbacks_url = format!(
        "http://127.0.0.1:{}/v1/callbacks",
        application.public_port()
    );
    let admin_url = format!("http://127.0.0.1:{}", application.admin_port());
    let shutdown = application.shutdown_handle();
    let task = tokio::spawn(application.run_until_stopped());
    TestApp {
        callbacks_url,
        admin_url,
        prefix: prefix.to_owned(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap(),
        shutdown,
        task: Some(task),
    }
}

fn init_logs() {
    // Logs help when a test fails; `TEST_LOG=1` shows them.
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
}

/// An HTTP answer: status, headers of interest, parsed JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Json,
}

impl TestApp {
    pub fn topic(&self, kind: &str) -> String {
        format!("{}.{kind}", self.prefix)
    }

    pub async fn post_raw(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self.client.post(&self.callbacks_url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        answer(request.send().await.expect("request sent")).await
    }

    pub async fn post(&self, callback: &SignedCallback) -> Answer {
        self.post_raw(Some(callback.content_type), callback.body.clone())
            .await
    }

    /// Signs `body` with the shared secret, a fresh nonce and the current time, and posts it.
    pub async fn post_signed(&self, body: &str) -> Answer {
        self.post(&sign(body, SECRET)).await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.admin_url))
            .send()
            .await
            .expect("admin request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    /// Shuts the bridge down as SIGTERM would and returns its report.
    pub async fn stop(mut self) -> ShutdownReport {
        self.shutdown.shutdown();
        self.task
            .take()
            .unwrap()
            .await
            .expect("application task")
            .expect("clean shutdown")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.shutdown.shutdown();
        }
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("reply is not JSON: {text:?}"));
    Answer {
        status,
        retry_after,
        body,
    }
}

pub fn sign(body: &str, secret: &str) -> SignedCallback {
    let nonce = sender::random_nonce();
    sender::sign_callback(
        body,
        &Signing {
            nonce: &nonce,
            ..Signing::now(secret)
        },
    )
    .expect("signable")
}

/// A record read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub value: Json,
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
    for partition in 0..PARTITIONS {
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
            value: serde_json::from_slice(message.payload().expect("a value")).expect("JSON value"),
        });
        if records.len() % 1000 == 0 && done(&records) {
            break;
        }
    }
    records
}

/// The committed JSON Schema of an event type, from `schemas/`.
pub fn schema_validator(kind: &str) -> jsonschema::Validator {
    let path = format!("{}/schemas/{kind}.schema.json", env!("CARGO_MANIFEST_DIR"));
    let schema: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("schema compiles")
}

pub fn assert_matches_schema(value: &Json) {
    let kind = value["type"].as_str().expect("a type");
    let validator = schema_validator(kind);
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|err| err.to_string())
        .collect();
    assert!(errors.is_empty(), "{kind}: {errors:?}\n{value:#}");
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh file path in a directory of its own.
pub fn scratch_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zkb-{}", unique_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The real binary, as an operator runs it. Its output goes to a file: a pipe that fills up
/// would stall a busy bridge.
pub struct BridgeProcess {
    pub child: std::process::Child,
    pub callbacks_url: String,
    pub admin_url: String,
    output: std::path::PathBuf,
}

impl BridgeProcess {
    /// Starts the binary on free loopback ports with only these variables (and PATH), and
    /// waits until it is ready.
    pub async fn start(vars: &[(&str, &str)]) -> BridgeProcess {
        let bridge = Self::start_unready(vars).await;
        bridge.wait_ready(Duration::from_secs(20)).await;
        bridge
    }

    /// Starts the binary and waits until it serves its admin port, ready or not.
    pub async fn start_unready(vars: &[(&str, &str)]) -> BridgeProcess {
        let (public, admin) = (free_port(), free_port());
        let output = scratch_file("bridge.log");
        let log = std::fs::File::create(&output).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_zego-kafka-bridge"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ZEGO_BRIDGE_LISTEN_ADDR", format!("127.0.0.1:{public}"))
            .env("ZEGO_BRIDGE_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("ZEGO_BRIDGE_HTTP_WORKERS", "2")
            .envs(vars.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the binary starts");
        let bridge = BridgeProcess {
            child,
            callbacks_url: format!("http://127.0.0.1:{public}/v1/callbacks"),
            admin_url: format!("http://127.0.0.1:{admin}"),
            output,
        };
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        while client
            .get(format!("{}/healthz", bridge.admin_url))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the bridge did not start: {}",
                bridge.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bridge
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, within: Duration) {
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        loop {
            let ready = client
                .get(format!("{}/readyz", self.admin_url))
                .send()
                .await
                .map(|response| response.status() == 200)
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                started.elapsed() < within,
                "the bridge did not become ready: {}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// `host:port` of the public listener, for raw TCP clients.
    pub fn address(&self) -> String {
        self.callbacks_url
            .trim_start_matches("http://")
            .trim_end_matches("/v1/callbacks")
            .to_owned()
    }

    /// Sends SIGTERM, waits, and returns the exit code and everything the process printed.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        signal(self.child.id(), "TERM");
        let code = self.child.wait().unwrap().code();
        (code, self.output())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
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

/// Creates every event type's topic under `prefix` on the given brokers.
pub async fn create_topics_on(bootstrap: &str, prefix: &str) {
    zego_kafka_bridge::bench::create_topics(bootstrap, prefix, PARTITIONS)
        .await
        .expect("topics created");
}

/// A `mix_start` callback (unsigned) whose `seq` tells it apart.
pub fn mix_start(seq: usize) -> String {
    format!(
        r#"{{"event":"mix_start","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"{seq}"}}"#
    )
}

/// Signs `body` afresh with the shared secret and posts it; the status, or 0 when the request
/// failed.
pub async fn post_signed_to(client: &reqwest::Client, url: &str, body: &str) -> u16 {
    let signed = sign(body, SECRET);
    client
        .post(url)
        .header("content-type", signed.content_type)
        .body(signed.body)
        .send()
        .await
        .map(|response| response.status().as_u16())
        .unwrap_or(0)
}

/// Posts one freshly signed `mix_start`; the status, or 0 when the request failed.
async fn post_one(client: &reqwest::Client, url: &str, seq: usize) -> (usize, u16) {
    (seq, post_signed_to(client, url, &mix_start(seq)).await)
}

/// The real binary with an empty environment (but PATH), as an operator's command line.
pub fn bridge_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_zego-kafka-bridge"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// What a load saw: every callback sent, its status (0: no answer) and when it was answered.
pub struct Load {
    /// Callbacks sent.
    pub sent: usize,
    pub accepted: std::collections::BTreeSet<usize>,
    /// `(seq, status, answered at, from the start of the load)`.
    pub answers: Vec<(usize, u16, Duration)>,
}

impl Load {
    /// Answers with `status` given between `from` and `to` after the start of the load.
    pub fn count_between(&self, status: u16, from: Duration, to: Duration) -> usize {
        self.answers
            .iter()
            .filter(|(_, answered, at)| *answered == status && *at >= from && *at < to)
            .count()
    }
}

/// Set to end a load started with [`post_until`].
pub type StopFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Full load (20 at a time) in the background until the server at `url` is gone, for tests
/// that stop or kill the bridge in the middle of it.
pub fn load_until_gone(url: &str) -> tokio::task::JoinHandle<Load> {
    let url = url.to_owned();
    tokio::spawn(async move { post_until(&url, StopFlag::default(), 20, Duration::ZERO).await })
}

/// Posts `mix_start` callbacks, `parallel` at a time, each signed afresh, with `pause` between
/// rounds, until `stop` is set or the server is gone (a whole round unanswered).
pub async fn post_until(url: &str, stop: StopFlag, parallel: usize, pause: Duration) -> Load {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let mut load = Load {
        sent: 0,
        accepted: std::collections::BTreeSet::new(),
        answers: Vec::new(),
    };
    let mut next = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let answers = futures_util::future::join_all((next..next + parallel).map(|seq| {
            let client = &client;
            async move {
                let (seq, status) = post_one(client, url, seq).await;
                (seq, status, started.elapsed())
            }
        }))
        .await;
        next += parallel;
        load.sent += parallel;
        let gone = answers.iter().all(|(_, status, _)| *status == 0);
        for &(seq, status, _) in &answers {
            if status == 200 {
                load.accepted.insert(seq);
            }
        }
        load.answers.extend(answers);
        if gone {
            break;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    load
}

/// Posts `mix_start` callbacks for `seqs`, `parallel` at a time; returns the seqs answered 200.
pub async fn post_parallel(
    url: &str,
    seqs: std::ops::Range<usize>,
    parallel: usize,
) -> std::collections::BTreeSet<usize> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut accepted = std::collections::BTreeSet::new();
    let all: Vec<usize> = seqs.collect();
    for chunk in all.chunks(parallel) {
        let answers =
            futures_util::future::join_all(chunk.iter().map(|seq| post_one(&client, url, *seq)))
                .await;
        accepted.extend(
            answers
                .into_iter()
                .filter(|(_, status)| *status == 200)
                .map(|(seq, _)| seq),
        );
    }
    accepted
}

/// The `seq` of each record.
pub fn seqs(records: &[Record]) -> std::collections::BTreeSet<usize> {
    records
        .iter()
        .map(|record| record.value["seq"].as_u64().expect("a seq") as usize)
        .collect()
}

/// Prints one line of the figures quoted in docs/RELIABILITY.md (run with `--nocapture`):
/// callbacks sent, answered 200, found in Kafka (distinct), dead-lettered, and duplicates
/// (records beyond the first of each event).
pub fn report_figures(
    test: &str,
    sent: usize,
    accepted: usize,
    records: &[Record],
    dead_lettered: usize,
) {
    let distinct = seqs(records).len();
    eprintln!(
        "FIGURES {test}: sent={sent} acked={accepted} delivered={distinct} dead_lettered={dead_lettered} duplicates={}",
        records.len().saturating_sub(distinct)
    );
}

/// The `seq` of every event in a dead-letter file (none if there is no file).
pub fn dead_lettered_seqs(path: &std::path::Path) -> std::collections::BTreeSet<usize> {
    if !path.exists() {
        return std::collections::BTreeSet::new();
    }
    zego_kafka_bridge::kafka::DeadLetterFile::read(path)
        .unwrap()
        .into_iter()
        .map(|letter| {
            let event: serde_json::Value =
                serde_json::from_str(letter.unwrap().event.get()).unwrap();
            event["seq"].as_u64().expect("a seq") as usize
        })
        .collect()
}

/// librdkafka's in-process mock cluster with one broker and every type's topic under `prefix`
/// (one partition each). Not `Send`: keep it on the test's own stack.
pub fn mock_cluster(
    prefix: &str,
) -> rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    for kind in catalog::ALL {
        cluster
            .create_topic(&format!("{prefix}.{}", kind.name), 1, 1)
            .expect("mock topic");
    }
    cluster
}

/// Asserts every seq answered 200 was delivered or dead-lettered.
pub fn assert_all_accounted(
    accepted: &std::collections::BTreeSet<usize>,
    delivered: &std::collections::BTreeSet<usize>,
    dead: &std::collections::BTreeSet<usize>,
) {
    let unaccounted: Vec<&usize> = accepted
        .iter()
        .filter(|seq| !delivered.contains(seq) && !dead.contains(seq))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "{} of {} acknowledged callbacks are neither in Kafka nor dead-lettered, e.g. {:?}",
        unaccounted.len(),
        accepted.len(),
        &unaccounted[..unaccounted.len().min(20)]
    );
}
