//! Load and loss accounting: callbacks sent under load, and every one answered 200 found.

use super::*;

/// A `mix_start` callback (unsigned) whose `seq` tells it apart.
pub fn mix_start(seq: usize) -> String {
    format!(
        r#"{{"event":"mix_start","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"{seq}"}}"#
    )
}

/// The `mix_stop` of the same task.
pub fn mix_stop(seq: usize) -> String {
    format!(
        r#"{{"event":"mix_stop","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"{seq}"}}"#
    )
}

/// Signs `body` afresh with the shared secret and posts it; the status, or 0 when the request
/// failed.
pub async fn post_signed_to(client: &reqwest::Client, url: &str, body: &str) -> u16 {
    post_signed_with(client, url, body, SECRET).await
}

/// Signs `body` afresh with `secret` and posts it; the status, or 0 when the request failed.
pub async fn post_signed_with(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    secret: &str,
) -> u16 {
    let signed = sign(body, secret);
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
/// The seqs of the events in a dead-letter file and in the claims a retry holds.
/// How many dead letters of the file give each reason.
pub fn dead_letter_reasons(path: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    let mut reasons = std::collections::BTreeMap::new();
    if path.exists() {
        for letter in zego_kafka_bridge::kafka::DeadLetterFile::read(path).unwrap() {
            *reasons.entry(letter.unwrap().error).or_insert(0) += 1;
        }
    }
    reasons
}

/// The lines of a scrape that describe the producer and its brokers.
pub fn producer_lines(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|line| {
            !line.starts_with('#')
                && (line.starts_with("zego_bridge_kafka_")
                    || line.starts_with("zego_bridge_producer_")
                    || line.starts_with("zego_bridge_dead_letter"))
                && !line.contains("_bucket{")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn dead_lettered_seqs(path: &std::path::Path) -> std::collections::BTreeSet<usize> {
    let file = zego_kafka_bridge::kafka::DeadLetterFile::new(path);
    let mut files = file.leftover_claims().unwrap_or_default();
    files.push(path.to_owned());
    files
        .iter()
        .filter(|path| path.exists())
        .flat_map(|path| zego_kafka_bridge::kafka::DeadLetterFile::read(path).unwrap())
        .map(|letter| {
            let event: serde_json::Value =
                serde_json::from_str(letter.unwrap().event.get()).unwrap();
            event["seq"].as_u64().expect("a seq") as usize
        })
        .collect()
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

/// The sum of every series of a metric family in a scrape.
pub fn metric_sum(metrics: &str, family: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
