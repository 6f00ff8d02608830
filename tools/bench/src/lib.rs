//! `zego-bridge-bench load`: a load generator for sizing and regression checks. It sends
//! distinct, correctly signed callbacks in a realistic mix of kinds and encodings, flat out or at
//! a fixed rate over N connections, and reports throughput and ack latency (HDR histogram).
//! Given the brokers, it also reads the topics back and reports end-to-end latency and whether
//! every acknowledged event arrived exactly once.
//!
//! `zego-bridge-bench baseline` is the yardstick: a bare actix-web server that reads
//! the body and answers 200, so results can be given as a ratio to the HTTP stack's limit.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use zego_kafka_bridge::event::catalog;
use zego_kafka_bridge::zego;

/// One kind of callback in the mix: a template with placeholders, its weight, its encoding.
struct Template {
    body: String,
    form: bool,
    weight: u32,
}

/// `{SEQ}` makes the event distinct (it sits in an identity field and in `bench_seq`, which
/// lands under `extra`); `{TS}`, `{NONCE}`, `{SIG}` are signed per request.
fn templates() -> Vec<Template> {
    let json = |body: &str, weight| Template {
        body: body.to_owned(),
        form: false,
        weight,
    };
    vec![
        json(r#"{"event":"room_login","appid":"1","timestamp":"{TS}","nonce":"{NONCE}","signature":"{SIG}","room_id":"room-{ROOM}","room_name":"bench","room_seq":"6085791336856668982","user_account":"user-{SEQ}","user_nickname":"user","session_id":"{SEQ}","login_time":"1499676978027","user_role":"2","auth_level":"4","relogin":"0","user_update_seq":"1","callback_data":"","bench_seq":{SEQ}}"#, 30),
        Template {
            body: "event=room_logout&appid=1&timestamp={TS}&nonce={NONCE}&signature={SIG}&room_id=room-{ROOM}&room_seq=6085791336856668982&user_account=user-{SEQ}&user_nickname=user&session_id={SEQ}&login_time=1499676978027&logout_time=1499676988027&reason=0&user_role=2&user_update_seq=2&bench_seq={SEQ}".to_owned(),
            form: true,
            weight: 20,
        },
        json(r#"{"event":"stream_create","appid":"1","timestamp":"{TS}","nonce":"{NONCE}","signature":"{SIG}","room_id":"room-{ROOM}","room_session_id":"1234567","user_id":"user-{SEQ}","user_name":"user","stream_id":"stream-{SEQ}","stream_sid":"s-{SEQ}","title":"t","stream_attr":"{\"cid\":0}","stream_seq":"1","create_time":"1687981272","create_time_ms":"1687981272742","extra_info":"","recreate":"0","rtmp_url":["rtmp://example/live/a"],"hls_url":["http://example/live/a.m3u8"],"hdl_url":["http://example/live/a.flv"],"pic_url":["http://example/live/a.jpg"],"bench_seq":{SEQ}}"#, 15),
        json(r#"{"event":"stream_close","appid":"1","timestamp":"{TS}","nonce":"{NONCE}","signature":"{SIG}","room_id":"room-{ROOM}","room_session_id":"1234567","user_id":"user-{SEQ}","user_name":"user","stream_id":"stream-{SEQ}","stream_sid":"s-{SEQ}","stream_seq":"2","type":"0","third_define_data":"","create_time_ms":"1687981272742","destroy_timemillis":"1687981292742","bench_seq":{SEQ}}"#, 15),
        json(r#"{"event":"room_close","appid":1,"timestamp":{TS},"nonce":"{NONCE}","signature":"{SIG}","room_id":"room-{ROOM}","room_session_id":{SEQ},"close_reason":1,"room_close_time":"1499676989909","bench_seq":{SEQ}}"#, 10),
        json(r#"{"event":"mix_stop","appid":"1","timestamp":"{TS}","nonce":"{NONCE}","signature":"{SIG}","channel_id":"room-{ROOM}","publish_id":"abc","task_id":"1:task","seq":"{SEQ}","mix_url":"rtmp://example/mix","mix_stream_alias":"mix","bench_seq":{SEQ}}"#, 5),
        json(&format!(
            r#"{{"Event":"censor_audio_v2_result","AppId":1,"Timestamp":{{TS}},"Nonce":"{{NONCE}}","Signature":"{{SIG}}","Code":0,"Message":"success","TaskId":"task","ResultTaskId":"r-{{SEQ}}","Detail":{{"RiskLevel":"REJECT","AudioText":"{text}","AudioUrl":"http://example/a.mp3","PreAudioUrl":"http://example/p.mp3","RiskDescription":"ad:contact:contact","RiskLabel1":"ad","RiskLabel2":"contact","RiskLabel3":"contact","VadStatus":1,"RiskDetail":{{"RiskSource":1001,"AudioText":"{text}","MatchedLists":null}},"RiskInfoList":[{{"RiskLevel":"REJECT","RiskDescription":"ad:contact:contact","RiskLabel1":"ad","RiskLabel2":"contact","RiskLabel3":"contact","RiskDetail":{{"RiskSource":1001,"AudioText":"{text}","MatchedLists":null}}}}],"BusinessInfoList":[]}},"AuxInfo":{{"RoomId":"room-{{ROOM}}","ProcessBeginTime":1717677317155,"ProcessFinishTime":1717677317554,"UserId":"user-{{SEQ}}"}},"bench_seq":{{SEQ}}}}"#,
            text = "Let's be friends, my ID is someone.example ".repeat(4).trim_end()
        ), 5),
    ]
}

/// Builds signed callbacks from the mix. Cheap per request: string substitution and one SHA-1.
pub struct CallbackMix {
    templates: Vec<Template>,
    total_weight: u32,
    secret: String,
    timestamp: String,
    /// Pads every body by this many bytes (in an unknown field), to measure body size.
    padding: String,
}

impl CallbackMix {
    pub fn new(secret: &str, pad_bytes: usize) -> Self {
        let templates = templates();
        let total_weight = templates.iter().map(|template| template.weight).sum();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |now| now.as_secs())
            .to_string();
        CallbackMix {
            templates,
            total_weight,
            secret: secret.to_owned(),
            timestamp,
            padding: "x".repeat(pad_bytes),
        }
    }

    /// The `seq`-th callback: body and Content-Type.
    pub fn callback(&self, seq: u64) -> (String, &'static str) {
        let mut pick = (seq.wrapping_mul(2_654_435_761) % u64::from(self.total_weight)) as u32;
        let template = self
            .templates
            .iter()
            .find(|template| {
                if pick < template.weight {
                    return true;
                }
                pick -= template.weight;
                false
            })
            .expect("weights cover the range");
        let nonce = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1).to_string();
        let signature = zego::sign(&self.secret, &self.timestamp, &nonce);
        let seq_text = seq.to_string();
        let room = (seq % 1000).to_string();
        let mut body = template
            .body
            .replace("{SEQ}", &seq_text)
            .replace("{ROOM}", &room)
            .replace("{TS}", &self.timestamp)
            .replace("{NONCE}", &nonce)
            .replace("{SIG}", &signature);
        if !self.padding.is_empty() {
            if template.form {
                body.push_str("&bench_padding=");
                body.push_str(&self.padding);
            } else {
                body.insert_str(
                    body.len() - 1,
                    &format!(r#","bench_padding":"{}""#, self.padding),
                );
            }
        }
        let content_type = if template.form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        (body, content_type)
    }
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub url: String,
    pub secret: String,
    pub connections: usize,
    pub duration: Duration,
    /// Requests per second in total; `None` sends flat out.
    pub rate: Option<u64>,
    pub pad_bytes: usize,
    /// With these, the topics are read back for end-to-end latency and exactly-once checks.
    pub brokers: Option<String>,
    pub topic_prefix: String,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        Percentiles {
            p50_us: histogram.value_at_quantile(0.50),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EndToEnd {
    pub received: u64,
    /// Acknowledged (200) but never read back.
    pub missing: u64,
    /// Events written to Kafka more than once: extra copies at other offsets (a producer retry
    /// the broker did not deduplicate).
    pub duplicates: u64,
    /// The same record (topic, partition, offset) delivered to the reader again: an artifact
    /// of the consumer and broker, not a second copy in Kafka.
    pub reread: u64,
    /// Up to ten events read more than once, as `topic/partition@offset` of each copy.
    pub duplicate_examples: Vec<String>,
    pub latency: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub label: String,
    pub connections: usize,
    pub pad_bytes: usize,
    pub seconds: f64,
    pub sent: u64,
    pub accepted: u64,
    pub statuses: BTreeMap<String, u64>,
    pub throughput_per_sec: f64,
    pub ack_latency: Percentiles,
    pub end_to_end: Option<EndToEnd>,
}

/// Runs the load and reports. Needs a Tokio runtime.
pub async fn run(options: LoadOptions) -> Result<LoadReport, String> {
    let mix = Arc::new(CallbackMix::new(&options.secret, options.pad_bytes));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.connections)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|err| err.to_string())?;
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let reader = match &options.brokers {
        Some(brokers) => {
            Some(Reader::start(brokers, &options.topic_prefix, sent_at.clone()).await?)
        }
        None => None,
    };
    // Runs start from their own time, so no two runs share an event (or a `bench_seq`).
    let first_seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() as u64)
        .saturating_mul(1000);
    let next = Arc::new(AtomicU64::new(first_seq));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let per_connection_interval = options
        .rate
        .map(|rate| Duration::from_secs_f64(options.connections as f64 / rate.max(1) as f64));
    let mut workers = Vec::new();
    for _ in 0..options.connections {
        let (client, mix, next, stop, url, sent_at) = (
            client.clone(),
            mix.clone(),
            next.clone(),
            stop.clone(),
            options.url.clone(),
            sent_at.clone(),
        );
        let track = options.brokers.is_some();
        workers.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            let mut accepted = Vec::new();
            let mut ticker = per_connection_interval.map(tokio::time::interval);
            let mut previous_answered = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let due = match &mut ticker {
                    Some(ticker) => ticker.tick().await.into_std(),
                    None => Instant::now(),
                };
                // At a fixed rate, a request delayed because the previous answer came late
                // counts from when it was due, so a stall of the server shows in full (no
                // coordinated omission). A request whose connection was free counts from when
                // it was sent: Tokio's timer wakes up to a millisecond late, which is the load
                // tool's delay, not the server's.
                let started = if previous_answered > due {
                    due
                } else {
                    Instant::now()
                };
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let (body, content_type) = mix.callback(seq);
                if track {
                    sent_at.lock().expect("lock").insert(seq, Instant::now());
                }
                let status = client
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .map(|response| response.status().as_u16());
                previous_answered = Instant::now();
                let micros = previous_answered.duration_since(started).as_micros() as u64;
                let _ = histogram.record(micros.max(1));
                let label = match status {
                    Ok(status) => status.to_string(),
                    Err(_) => "error".to_owned(),
                };
                if label == "200" {
                    accepted.push(seq);
                }
                *statuses.entry(label).or_default() += 1;
            }
            (histogram, statuses, accepted)
        }));
    }
    tokio::time::sleep(options.duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut accepted = Vec::new();
    for worker in workers {
        let (worker_histogram, worker_statuses, worker_accepted) =
            worker.await.map_err(|err| err.to_string())?;
        histogram
            .add(&worker_histogram)
            .map_err(|err| err.to_string())?;
        for (status, count) in worker_statuses {
            *statuses.entry(status).or_default() += count;
        }
        accepted.extend(worker_accepted);
    }
    let seconds = started.elapsed().as_secs_f64();
    let sent: u64 = statuses.values().sum();
    let end_to_end = match reader {
        Some(reader) => Some(reader.finish(&accepted).await),
        None => None,
    };
    Ok(LoadReport {
        label: options.label,
        connections: options.connections,
        pad_bytes: options.pad_bytes,
        seconds,
        sent,
        accepted: accepted.len() as u64,
        statuses,
        throughput_per_sec: accepted.len() as f64 / seconds,
        ack_latency: Percentiles::of(&histogram),
        end_to_end,
    })
}

/// Every copy of each `bench_seq` read back.
type Copies = HashMap<u64, Vec<RecordPosition>>;

/// Where a copy of an event was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordPosition {
    topic: String,
    partition: i32,
    offset: i64,
}

impl std::fmt::Display for RecordPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// Reads every topic of the prefix from its end, noting when each `bench_seq` arrives. It runs
/// on a thread of its own: on the load's thread, a burst of arriving records would hold up the
/// requests and show as the bridge's latency.
struct Reader {
    task: std::thread::JoinHandle<(Copies, Histogram<u64>)>,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
}

impl Reader {
    async fn start(
        brokers: &str,
        prefix: &str,
        sent_at: Arc<Mutex<HashMap<u64, Instant>>>,
    ) -> Result<Self, String> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("zego-bench-{}", rand::random::<u32>()))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|err| format!("cannot create the consumer: {err}"))?;
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map_err(|err| format!("cannot read the cluster's metadata: {err}"))?;
        // Every partition from its current end, read as an explicit offset before the load
        // starts: a partition assigned at `Offset::End` takes that end only once its fetch
        // starts, and records written before then would be missed (with every product's topics
        // assigned, that took longer than the load took to start). Only the topics of the mix.
        let mut assignment = TopicPartitionList::new();
        for kind in catalog::ALL.iter().filter(|kind| {
            kind.product == zego::Product::Rtc || kind.product == zego::Product::CloudRecording
        }) {
            let topic = format!("{prefix}.{}", kind.name);
            let Some(found) = metadata.topics().iter().find(|found| found.name() == topic) else {
                continue;
            };
            for partition in found.partitions() {
                // A fresh broker may still be electing the partition's leader: ask again.
                let mut attempts = 0;
                let end = loop {
                    match consumer.fetch_watermarks(&topic, partition.id(), Duration::from_secs(10))
                    {
                        Ok((_, end)) => break end,
                        Err(_) if attempts < 50 => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(err) => return Err(format!("cannot read the end of {topic}: {err}")),
                    }
                };
                assignment
                    .add_partition_offset(&topic, partition.id(), Offset::Offset(end))
                    .map_err(|err| err.to_string())?;
            }
        }
        consumer
            .assign(&assignment)
            .map_err(|err| err.to_string())?;
        // Let the assignment settle at the end offsets before the load starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (task_stop, task_received) = (stop.clone(), received.clone());
        let reader = async move {
            let mut seen = Copies::new();
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
            while !task_stop.load(Ordering::Relaxed) {
                let Ok(Ok(message)) =
                    tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
                else {
                    continue;
                };
                let Some(seq) = message
                    .payload()
                    .and_then(|payload| serde_json::from_slice::<serde_json::Value>(payload).ok())
                    .and_then(|event| {
                        // A form carries it as text, JSON as a number; both land under `extra`.
                        let seq = &event["extra"]["bench_seq"];
                        seq.as_u64().or_else(|| seq.as_str()?.parse().ok())
                    })
                else {
                    continue;
                };
                let copies = seen.entry(seq).or_default();
                copies.push(RecordPosition {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                });
                if copies.len() == 1 {
                    task_received.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent) = sent_at.lock().expect("lock").get(&seq) {
                        let _ = histogram.record((sent.elapsed().as_micros() as u64).max(1));
                    }
                }
            }
            (seen, histogram)
        };
        let task = std::thread::Builder::new()
            .name("bench-reader".to_owned())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a Tokio runtime")
                    .block_on(reader)
            })
            .map_err(|err| format!("cannot start the reader thread: {err}"))?;
        Ok(Reader {
            task,
            stop,
            received,
        })
    }

    /// Waits for every acknowledged event: until all arrived, or nothing new came for 10 s
    /// (the bridge's queue may still be draining into a slower broker), at most 3 minutes.
    async fn finish(self, accepted: &[u64]) -> EndToEnd {
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut last_count = 0;
        let mut last_progress = Instant::now();
        loop {
            let count = self.received.load(Ordering::Relaxed);
            if count >= accepted.len() as u64 || Instant::now() > deadline {
                break;
            }
            if count > last_count {
                (last_count, last_progress) = (count, Instant::now());
            } else if last_progress.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let task = self.task;
        let (seen, histogram) = tokio::task::spawn_blocking(move || task.join())
            .await
            .expect("the reader thread joins")
            .expect("the reader thread does not panic");
        EndToEnd {
            received: seen.len() as u64,
            missing: accepted
                .iter()
                .filter(|seq| !seen.contains_key(seq))
                .count() as u64,
            duplicates: seen
                .values()
                .map(|copies| distinct(copies).saturating_sub(1) as u64)
                .sum(),
            reread: seen
                .values()
                .map(|copies| (copies.len() - distinct(copies)) as u64)
                .sum(),
            duplicate_examples: seen
                .values()
                .filter(|copies| copies.len() > 1)
                .take(10)
                .map(|copies| {
                    copies
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect(),
            latency: Percentiles::of(&histogram),
        }
    }
}

fn distinct(copies: &[RecordPosition]) -> usize {
    copies
        .iter()
        .enumerate()
        .filter(|(index, copy)| !copies[..*index].contains(copy))
        .count()
}

/// Creates `{prefix}.{type}` for every type (existing ones are left alone).
pub async fn create_topics(brokers: &str, prefix: &str, partitions: i32) -> Result<(), String> {
    let names = zego_kafka_bridge::kafka::TopicMap::new(prefix, &[])
        .map_err(|err| err.to_string())?
        .distinct();
    let layout = zego_kafka_bridge::kafka::TopicLayout {
        partitions,
        replication_factor: 1,
    };
    let outcomes =
        zego_kafka_bridge::kafka::create_topics(brokers, &Default::default(), &names, layout)
            .await?;
    match outcomes
        .into_iter()
        .find_map(|(name, outcome)| match outcome {
            zego_kafka_bridge::kafka::TopicCreation::Failed(reason) => {
                Some(format!("{name}: {reason}"))
            }
            _ => None,
        }) {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// What plain rdkafka achieves against the broker: the Kafka side's limit.
#[derive(Debug, Serialize)]
pub struct ProduceReport {
    pub label: String,
    pub seconds: f64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Delivered per second, counted until the last delivery report.
    pub throughput_per_sec: f64,
    pub average_value_bytes: u64,
}

#[derive(Default)]
struct CountingContext {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl rdkafka::ClientContext for CountingContext {}

impl rdkafka::producer::ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Produces the events of the mix, encoded as the bridge encodes them (same topics, keys,
/// headers, producer settings), flat out with plain rdkafka for `duration`, then waits for
/// every delivery report. No HTTP, no per-request work: the rate Kafka and librdkafka allow.
pub fn produce_flat_out(
    brokers: &str,
    prefix: &str,
    duration: Duration,
    label: String,
) -> Result<ProduceReport, String> {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

    let mix = CallbackMix::new("produce", 0);
    let secrets = zego::CallbackSecrets::parse("produce").map_err(|err| err.to_string())?;
    let topics =
        zego_kafka_bridge::kafka::TopicMap::new(prefix, &[]).map_err(|err| err.to_string())?;
    let mut records = Vec::new();
    for seq in 0..4096 {
        let (body, _) = mix.callback(seq);
        let callback = zego::RawCallback::decode(body.as_bytes(), zego::sniff(body.as_bytes()))
            .map_err(|err| err.to_string())?;
        let common = zego::CommonFields::read(&callback.root).map_err(|err| err.to_string())?;
        common.verify(&secrets).map_err(|err| err.to_string())?;
        let event = zego_kafka_bridge::event::normalize(
            &callback,
            &common,
            zego_kafka_bridge::zego::Product::Rtc,
            0,
        );
        records.push((
            topics.topic(event.kind).to_string(),
            event.partition_key.as_deref().map(str::to_owned),
            event.to_json(),
            zego_kafka_bridge::kafka::headers_for(&event),
        ));
    }
    let average_value_bytes = records
        .iter()
        .map(|record| record.2.len() as u64)
        .sum::<u64>()
        / records.len() as u64;
    let producer: ThreadedProducer<CountingContext> =
        zego_kafka_bridge::kafka::producer_config(brokers, &[], &Default::default())
            .create_with_context(CountingContext::default())
            .map_err(|err| format!("cannot create the producer: {err}"))?;
    let started = Instant::now();
    let mut sent = 0u64;
    'produce: loop {
        for (topic, key, value, headers) in &records {
            if started.elapsed() >= duration {
                break 'produce;
            }
            let mut record = BaseRecord::to(topic)
                .payload(value)
                .headers(headers.clone());
            if let Some(key) = key {
                record = record.key(key);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((err, back))
                        if err.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                    {
                        record = back;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err((err, _)) => return Err(format!("produce: {err}")),
                }
            }
            sent += 1;
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|err| format!("flush: {err}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let context = producer.context();
    let delivered = context.delivered.load(Ordering::Relaxed);
    Ok(ProduceReport {
        label,
        seconds,
        sent,
        delivered,
        failed: context.failed.load(Ordering::Relaxed),
        throughput_per_sec: delivered as f64 / seconds,
        average_value_bytes,
    })
}

/// The bare HTTP server the bridge is compared with: reads the body, answers 200.
pub async fn baseline_server(listen: std::net::SocketAddr, workers: usize) -> std::io::Result<()> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    HttpServer::new(|| {
        App::new().default_service(web::to(|_body: web::Bytes| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(r#"{"code":200,"message":"accepted"}"#)
        }))
    })
    .workers(workers)
    .bind(listen)?
    .run()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use zego_kafka_bridge::zego::{sniff, CallbackSecrets, CommonFields, RawCallback};

    #[test]
    fn every_generated_callback_is_signed_distinct_and_accepted_by_the_decoder() {
        let mix = CallbackMix::new("k", 100);
        let secrets = CallbackSecrets::parse("k").unwrap();
        let mut ids = std::collections::HashSet::new();
        let mut kinds = std::collections::HashSet::new();
        for seq in 0..500 {
            let (body, _) = mix.callback(seq);
            let callback = RawCallback::decode(body.as_bytes(), sniff(body.as_bytes())).unwrap();
            let common = CommonFields::read(&callback.root).unwrap();
            common.verify(&secrets).unwrap();
            let event = zego_kafka_bridge::event::normalize(
                &callback,
                &common,
                zego_kafka_bridge::zego::Product::Rtc,
                0,
            );
            assert!(event.coercion_failures.is_empty(), "{body}");
            assert_ne!(event.kind.name, "unrecognized");
            kinds.insert(event.kind.name);
            assert!(ids.insert(event.id), "seq {seq} repeats an event id");
        }
        assert_eq!(kinds.len(), 7, "{kinds:?}");
    }
}

/// The hot path per callback beside a fixed reference workload, timed in one process in
/// alternating rounds, so that their ratio shows a regression of the hot path on a machine
/// whose speed varies from one day (or minute) to the next.
#[derive(Debug, serde::Serialize)]
pub struct HotPathReport {
    pub label: String,
    /// Nanoseconds per callback of decode, classify, verify, normalize, encode and headers,
    /// one figure per round.
    pub hot_path_ns: Vec<f64>,
    /// Nanoseconds per pass of the reference workload, one figure per round.
    pub reference_ns: Vec<f64>,
    /// `hot_path_ns / reference_ns`, per round.
    pub ratio: Vec<f64>,
}

/// The reference: work that does not depend on the bridge's code (a SHA-1 over 64 KiB, a JSON
/// document parsed into a tree, 4,096 numbers sorted), about as long as a few callbacks.
fn reference_pass(document: &str, numbers: &mut [u64]) -> usize {
    use sha1::Digest;
    let digest = sha1::Sha1::digest([0x5a_u8; 64 * 1024]);
    let tree: serde_json::Value = serde_json::from_str(document).expect("the reference document");
    let mut state = u64::from(digest[0]);
    for number in numbers.iter_mut() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *number = state;
    }
    numbers.sort_unstable();
    tree.as_object().map_or(0, |object| object.len())
        + usize::from(digest[1])
        + numbers[0] as usize % 7
}

/// Times the hot path over the load's mix and the reference workload in `rounds` alternating
/// rounds of about `round` each.
pub fn hot_path_ratio(
    rounds: usize,
    round: Duration,
    label: String,
) -> Result<HotPathReport, String> {
    let mix = CallbackMix::new("secret", 0);
    let secrets = zego::CallbackSecrets::parse("secret").map_err(|err| err.to_string())?;
    let bodies: Vec<String> = (0..64).map(|seq| mix.callback(seq).0).collect();
    let hot_path = || {
        for body in &bodies {
            let callback = zego::RawCallback::decode(body.as_bytes(), zego::sniff(body.as_bytes()))
                .expect("the mix decodes");
            let product = zego::classify(&callback.root).unwrap_or(zego::Product::Rtc);
            let common =
                zego::CommonFields::read_for(&callback.root, product).expect("common fields");
            common
                .verify(secrets.for_product(product))
                .expect("the mix is signed");
            let event = zego_kafka_bridge::event::normalize(&callback, &common, product, 0);
            std::hint::black_box((
                event.to_json(),
                zego_kafka_bridge::kafka::header_pairs(&event),
            ));
        }
    };
    let document: String = {
        let fields: Vec<String> = (0..64)
            .map(|n| {
                format!(r#""field_{n}": {{"text": "value {n}", "number": {n}, "list": [1, 2, 3]}}"#)
            })
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    let mut numbers = vec![0u64; 4096];
    let mut reference = || std::hint::black_box(reference_pass(&document, &mut numbers));
    // How many passes of each fill a round, from a first calibration pass.
    let passes = |work: &mut dyn FnMut()| {
        let started = Instant::now();
        work();
        (round.as_nanos() / started.elapsed().as_nanos().max(1)).max(1) as u32
    };
    let hot_passes = passes(&mut || hot_path());
    let reference_passes = passes(&mut || {
        reference();
    });
    let mut report = HotPathReport {
        label,
        hot_path_ns: Vec::new(),
        reference_ns: Vec::new(),
        ratio: Vec::new(),
    };
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..hot_passes {
            hot_path();
        }
        let hot = started.elapsed().as_nanos() as f64 / f64::from(hot_passes) / bodies.len() as f64;
        let started = Instant::now();
        for _ in 0..reference_passes {
            reference();
        }
        let reference_ns = started.elapsed().as_nanos() as f64 / f64::from(reference_passes);
        report.hot_path_ns.push(hot);
        report.reference_ns.push(reference_ns);
        report.ratio.push(hot / reference_ns);
    }
    Ok(report)
}
