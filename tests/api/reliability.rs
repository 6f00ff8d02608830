//! Never lose an acknowledged callback. Faults are injected with librdkafka's mock cluster
//! (outages, retriable and non-retriable errors, the fatal idempotence error, a slow broker);
//! each test counts the callbacks answered 200 and finds every one in Kafka or in the
//! dead-letter file.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use zego_kafka_bridge::kafka::DeadLetterFile;

use crate::helpers::*;

/// Posts `count` distinct callbacks and returns the event ids of those answered 200.
async fn post_many(app: &TestApp, count: usize) -> (BTreeSet<usize>, usize) {
    let mut accepted = BTreeSet::new();
    let mut refused = 0;
    for seq in 0..count {
        let answer = app.post_signed(&mix_stop(seq)).await;
        match answer.status {
            200 => {
                accepted.insert(seq);
            }
            503 => refused += 1,
            other => panic!("unexpected status {other}: {:?}", answer.body),
        }
    }
    (accepted, refused)
}

/// The `seq` of every record in a topic of the given cluster.
async fn seqs_in(bootstrap: &str, topic: &str, expected: usize) -> BTreeSet<usize> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_prefix())
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut seqs = BTreeSet::new();
    let mut total = 0;
    while total < expected * 2 {
        let Ok(message) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
        else {
            break;
        };
        let message = message.unwrap();
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        // The CloudEvents headers and content-type; `ce_subject` when the record has a key.
        let expected_headers = 7 + usize::from(message.key().is_some());
        assert!(message
            .headers()
            .is_some_and(|headers| headers.count() == expected_headers));
        seqs.insert(value["seq"].as_u64().expect("a seq") as usize);
        total += 1;
    }
    seqs
}

async fn wait_for(app: &TestApp, needle: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let metrics = app.metrics().await;
        if metrics.contains(needle) || started.elapsed() > within {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shorter_than_the_grace_period_is_absorbed() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let dead = scratch_file("dead.jsonl");
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "60000"),
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
        ],
    )
    .await;
    cluster.broker_down(1).unwrap();
    let (accepted, refused) = post_many(&app, 30).await;
    assert_eq!(
        (accepted.len(), refused),
        (30, 0),
        "accepted into the queue during the blip"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.broker_up(1).unwrap();
    let delivered = seqs_in(&cluster.bootstrap_servers(), &app.topic("mix.stopped"), 30).await;
    assert_eq!(
        delivered, accepted,
        "every accepted callback arrived after the outage"
    );
    assert!(dead_lettered_seqs(&dead).is_empty());
    assert_eq!(app.stop().await.undelivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_turns_callbacks_away_and_the_bridge_recovers_by_itself() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "300"),
            ("ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS", "200"),
        ],
    )
    .await;
    assert_eq!(app.get("/readyz").await.0, 200);
    cluster.broker_down(1).unwrap();
    app.wait_for_readiness(503, Duration::from_secs(15)).await;
    let answer = app.post_signed(&mix_stop(1)).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.retry_after.as_deref(), Some("2"));
    let refused_in = Instant::now();
    let _ = app.post_signed(&mix_stop(2)).await;
    assert!(
        refused_in.elapsed() < Duration::from_millis(500),
        "a 503 comes at once"
    );

    cluster.broker_up(1).unwrap();
    app.wait_for_readiness(200, Duration::from_secs(15)).await;
    assert_eq!(app.post_signed(&mix_stop(3)).await.status, 200);
    let delivered = seqs_in(&cluster.bootstrap_servers(), &app.topic("mix.stopped"), 1).await;
    assert_eq!(delivered, BTreeSet::from([3]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_produce_errors_are_retried_without_loss() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let app = spawn_app_on(&prefix, &cluster.bootstrap_servers(), &[]).await;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let (accepted, _) = post_many(&app, 20).await;
    assert_eq!(accepted.len(), 20);
    let delivered = seqs_in(&cluster.bootstrap_servers(), &app.topic("mix.stopped"), 20).await;
    assert_eq!(delivered.len(), 20);
    let metrics = app.metrics().await;
    let failed: Vec<&str> = metrics
        .lines()
        .filter(|line| line.contains(r#"outcome="failed""#) && !line.ends_with(" 0"))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(app.stop().await.undelivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retriable_error_is_dead_lettered_and_replay_publishes_it() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let dead = scratch_file("dead.jsonl");
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap())],
    )
    .await;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
    );
    let answer = app.post_signed(&mix_stop(7)).await;
    assert_eq!(answer.status, 200);
    let dead_lettered =
        format!(r#"zego_bridge_dead_lettered_total{{topic="{prefix}.mix.stopped"}} 1"#);
    let metrics = wait_for(&app, &dead_lettered, Duration::from_secs(10)).await;
    assert!(metrics.contains(&dead_lettered), "{metrics}");
    let letters = DeadLetterFile::read(&dead).unwrap();
    let letter = letters[0].as_ref().unwrap();
    assert_eq!(letter.topic, format!("{prefix}.mix.stopped"));
    assert_eq!(letter.key.as_deref(), Some("t"));
    assert_eq!(letter.headers["ce_type"], "com.zegocloud.mix.stopped");
    assert!(
        letter.error.contains("InvalidRecord") || letter.error.contains("Invalid"),
        "{}",
        letter.error
    );
    app.stop().await;

    // The operator replays the file once the cause is fixed.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zego-kafka-bridge"))
        .env_clear()
        .env("ZEGO_BRIDGE_KAFKA_BROKERS", cluster.bootstrap_servers())
        .args(["replay", dead.to_str().unwrap()])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains("1 published") && printed.contains("0 failed and 0 unreadable"),
        "{printed}"
    );
    let delivered = seqs_in(
        &cluster.bootstrap_servers(),
        &format!("{prefix}.mix.stopped"),
        1,
    )
    .await;
    assert_eq!(delivered, BTreeSet::from([7]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_idempotence_error_rebuilds_the_producer_and_loses_nothing() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let dead = scratch_file("dead.jsonl");
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap())],
    )
    .await;
    assert_eq!(app.post_signed(&mix_stop(0)).await.status, 200);
    // Fatal for an idempotent producer: every later send of that producer fails.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let mut accepted = BTreeSet::from([0]);
    let mut refused = 0;
    for seq in 1..60 {
        match app.post_signed(&mix_stop(seq)).await.status {
            200 => {
                accepted.insert(seq);
            }
            503 => refused += 1,
            other => panic!("status {other}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = wait_for(
        &app,
        "zego_bridge_producer_rebuilds_total 1",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        metrics.contains("zego_bridge_producer_rebuilds_total 1"),
        "{metrics}"
    );
    assert_eq!(app.stop().await.undelivered, 0);
    let delivered = seqs_in(
        &cluster.bootstrap_servers(),
        &format!("{prefix}.mix.stopped"),
        60,
    )
    .await;
    let dead_lettered = dead_lettered_seqs(&dead);
    eprintln!(
        "FIGURES mock-fatal-idempotence-error: sent=60 acked={} delivered={} dead_lettered={} refused_503={refused}",
        accepted.len(),
        delivered.len(),
        dead_lettered.len()
    );
    let unaccounted: Vec<&usize> = accepted
        .iter()
        .filter(|seq| !delivered.contains(*seq) && !dead_lettered.contains(*seq))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "acked but neither delivered nor dead-lettered: {unaccounted:?} (refused {refused})"
    );
    assert!(
        dead_lettered.is_empty(),
        "events held by the broken producer are re-sent by the new one, not dead-lettered: {dead_lettered:?}"
    );
    assert!(
        accepted.len() > 30,
        "the bridge kept accepting after the rebuild: {}",
        accepted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_broker_times_out_the_delivered_mode_but_not_the_queued_mode() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let delivered_app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[
            ("ZEGO_BRIDGE_ACK_MODE", "delivered"),
            ("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let queued_app = spawn_app_on(&prefix, &cluster.bootstrap_servers(), &[]).await;
    // Fast broker: delivered mode answers 200 once Kafka has the event (the first delivery of
    // a new producer also sets up its idempotence, so allow a few tries on a loaded machine).
    let mut warm = false;
    for seq in 100..105 {
        if delivered_app.post_signed(&mix_stop(seq)).await.status == 200 {
            warm = true;
            break;
        }
    }
    assert!(warm, "delivered mode never answered 200 on a fast broker");
    cluster
        .broker_round_trip_time(1, Duration::from_millis(3000))
        .unwrap();
    let started = Instant::now();
    let answer = delivered_app.post_signed(&mix_stop(2)).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("within 1000 ms"),
        "{:?}",
        answer.body
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
    let started = Instant::now();
    assert_eq!(queued_app.post_signed(&mix_stop(3)).await.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "queued mode does not wait for Kafka"
    );
    cluster.broker_round_trip_time(1, Duration::ZERO).unwrap();
    assert_eq!(queued_app.stop().await.undelivered, 0);
    assert_eq!(delivered_app.stop().await.undelivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_mode_answers_once_the_event_is_in_kafka() {
    let app = spawn_app_with(&[("ZEGO_BRIDGE_ACK_MODE", "delivered")]).await;
    assert_eq!(app.post_signed(&mix_stop(5)).await.status, 200);
    // Already there: no waiting for a delivery report.
    let records = consume(&app.topic("mix.stopped"), 1, Duration::from_secs(3)).await;
    assert_eq!(records.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_not_published_twice_and_a_reused_signature_is_refused() {
    let app = spawn_app().await;
    let callback = sign(&mix_stop(1), SECRET);
    assert_eq!(app.post(&callback).await.status, 200);
    let retry = app.post(&callback).await;
    assert_eq!(retry.status, 200, "a retry is answered 200");
    // The same signature on another body (another event) is a replay with a forged body, or
    // ZEGO's own callback whose random nonce repeated in the same second: refused with 503,
    // which ZEGO's retry, signed afresh, would pass.
    let mut forged = callback.clone();
    forged.body = String::from_utf8(forged.body)
        .unwrap()
        .replace(r#""seq":"1""#, r#""seq":"999""#)
        .into_bytes();
    let answer = app.post(&forged).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .contains("came with another callback first"));
    let records = consume(&app.topic("mix.stopped"), 3, Duration::from_secs(3)).await;
    assert_eq!(records.len(), 1, "published once");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"zego_bridge_duplicates_total{type="mix.stopped"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"zego_bridge_signature_reuses_total{spelling="same"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"zego_bridge_unavailable_total{reason="signature_in_use"} 1"#),
        "{metrics}"
    );
}

/// `zego-kafka-bridge replay` with the same environment as the bridge, on `file`.
fn replay(file: &std::path::Path) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zego-kafka-bridge"))
        .env_clear()
        .env("ZEGO_BRIDGE_KAFKA_BROKERS", brokers())
        .args(["replay", file.to_str().unwrap()])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn dead_letters(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zego-kafka-bridge"))
        .env_clear()
        .arg("dead-letters")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_accepted_during_an_outage_that_outlasts_shutdown_are_dead_lettered_then_replayed() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let dead = scratch_file("dead.jsonl");
    let app = spawn_app_on(
        &prefix,
        "127.0.0.1:1",
        &[
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "60000"),
            ("ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS", "1000"),
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
        ],
    )
    .await;
    let (accepted, _) = post_many(&app, 5).await;
    assert_eq!(accepted.len(), 5);
    // The live file of a running bridge is the bridge's: it sends its letters again by itself,
    // through a handle it keeps open, so a replay that took the file would take letters still
    // being written.
    let (code, _, stderr) = replay(&dead);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("held by another process") && stderr.contains(".rejected"),
        "{stderr}"
    );
    let report = app.stop().await;
    assert_eq!(report.undelivered, 5);
    let dead_lettered = dead_lettered_seqs(&dead);
    assert_eq!(
        dead_lettered, accepted,
        "every acknowledged event is in the dead-letter file"
    );

    let topic = format!("{prefix}.mix.stopped");
    let (code, stdout, stderr) = replay(&dead);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("5 published"), "{stdout}");
    let records = consume(&topic, 5, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 5);

    // Run again by an operator unsure whether it worked: nothing is published twice. It once
    // republished the whole file every time.
    let (code, stdout, stderr) = replay(&dead);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("nothing to replay"), "{stdout}");
    assert_eq!(consume(&topic, 100, Duration::from_secs(3)).await.len(), 5);
    assert!(!dead.exists(), "the replayed letters left the file");
    let replayed = zego_kafka_bridge::replay::beside(&dead, ".replayed");
    assert_eq!(dead_lettered_seqs(&replayed), accepted, "and are on record");

    // Interrupted after its checkpoint at 3 of 5, a replay resumes there: the last two only.
    use std::os::unix::fs::MetadataExt;
    let claim = zego_kafka_bridge::replay::beside(&dead, ".replaying");
    let checkpoint = zego_kafka_bridge::replay::beside(&dead, ".replaying.checkpoint");
    std::fs::copy(&replayed, &claim).unwrap();
    let inode = std::fs::metadata(&claim).unwrap().ino();
    std::fs::write(&checkpoint, format!("3 {inode}\n")).unwrap();
    // A working file is not a dead-letter file: replaying the claim itself would republish
    // what the checkpoint says is done.
    let (code, _, stderr) = replay(&claim);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not a dead-letter file"), "{stderr}");
    let (code, stdout, stderr) = replay(&dead);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("resumed an interrupted replay after its first 3 letters")
            && stdout.contains("2 published"),
        "{stdout}"
    );
    assert_eq!(consume(&topic, 100, Duration::from_secs(3)).await.len(), 7);

    // A checkpoint of another file (left by a claim that is gone) counts nothing: the new
    // claim is replayed whole, none of it skipped.
    std::fs::write(&checkpoint, "4 1\n").unwrap();
    std::fs::copy(&replayed, &dead).unwrap();
    let (code, stdout, stderr) = replay(&dead);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("7 published") && !stdout.contains("resumed"),
        "{stdout}"
    );
    assert_eq!(consume(&topic, 100, Duration::from_secs(3)).await.len(), 14);
    // Listed from the image itself (it has no shell), and the record purged.
    let listed = dead_letters(&[dead.to_str().unwrap()]);
    assert!(
        listed.contains(&format!("{}: 14 letters", replayed.display()))
            && listed.contains(&format!("by topic: {topic} 14")),
        "{listed}"
    );
    let purged = dead_letters(&[dead.to_str().unwrap(), "--purge-replayed"]);
    assert!(purged.contains("14 letters deleted"), "{purged}");
    assert!(!replayed.exists());
    assert!(
        dead_letters(&[dead.to_str().unwrap()]).contains("no dead letters beside"),
        "nothing left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_producer_queue_answers_503_at_once_and_recovers() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "60000"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_QUEUE_BUFFERING_MAX_MESSAGES", "10"),
        ],
    )
    .await;
    cluster.broker_down(1).unwrap();
    let mut accepted = BTreeSet::new();
    let mut full = None;
    for seq in 0..30 {
        let started = Instant::now();
        let answer = app.post_signed(&mix_stop(seq)).await;
        match answer.status {
            200 => {
                accepted.insert(seq);
            }
            503 => {
                assert!(
                    started.elapsed() < Duration::from_millis(200),
                    "a full queue is refused at once"
                );
                full = Some(answer);
                break;
            }
            other => panic!("status {other}"),
        }
    }
    let full = full.expect("the 10-event queue filled up");
    assert_eq!(
        accepted.len(),
        10,
        "exactly the queue's capacity was accepted"
    );
    assert!(
        full.body["message"]
            .as_str()
            .unwrap()
            .contains("queue is full"),
        "{:?}",
        full.body
    );
    assert_eq!(full.retry_after.as_deref(), Some("2"));
    cluster.broker_up(1).unwrap();
    let started = Instant::now();
    while app.post_signed(&mix_stop(100)).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the queue never drained"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    accepted.insert(100);
    let delivered = seqs_in(
        &cluster.bootstrap_servers(),
        &app.topic("mix.stopped"),
        accepted.len(),
    )
    .await;
    assert_eq!(
        delivered, accepted,
        "everything accepted before and after is delivered"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"zego_bridge_unavailable_total{reason="queue_full"}"#),
        "{metrics}"
    );
}

/// The bridge sends its dead letters again by itself once Kafka takes them: a claim an earlier
/// run left mid-retry first, then the file; the file stays the record until Kafka acknowledged
/// each letter, and letters no retry can deliver (unreadable, too large) are kept apart in
/// `<file>.rejected`, never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_sent_again_by_the_bridge_and_the_undeliverable_kept_apart() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let topic = format!("{prefix}.mix.stopped");
    let dead = scratch_file("dead.jsonl");
    let letter = |seq: usize, payload: String| {
        format!(
            r#"{{"failed_at":"2026-12-01T00:00:00.000Z","error":"Message timed out","topic":"{topic}","key":"t","headers":{{"ce_id":"00000000-0000-4000-8000-{seq:012}"}},"event":{payload}}}"#
        )
    };
    let event = |seq: usize| format!(r#"{{"type":"mix.stopped","seq":{seq}}}"#);
    // An earlier run stopped while retrying these.
    let claim = dead.with_file_name("dead.jsonl.retrying-0000000000001");
    std::fs::write(
        &claim,
        format!(
            "{}\n{}\nnot a letter at all\n",
            letter(1, event(1)),
            letter(2, event(2))
        ),
    )
    .unwrap();
    // And these wait in the file: one more than Kafka takes (message.max.bytes).
    let oversized = format!(r#"{{"seq":4,"pad":"{}"}}"#, "x".repeat(1_100_000));
    std::fs::write(
        &dead,
        format!("{}\n{}\n", letter(3, event(3)), letter(4, oversized)),
    )
    .unwrap();

    let app = spawn_app_on(
        &prefix,
        &brokers(),
        &[
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
            ("ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS", "300"),
        ],
    )
    .await;
    let metrics = wait_for(
        &app,
        r#"zego_bridge_dead_letter_retries_total{outcome="rejected"} 2"#,
        Duration::from_secs(20),
    )
    .await;
    for series in [
        r#"zego_bridge_dead_letter_retries_total{outcome="delivered"} 3"#,
        r#"zego_bridge_dead_letter_retries_total{outcome="kept"} 0"#,
        r#"zego_bridge_dead_letter_retries_total{outcome="rejected"} 2"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    assert!(
        !claim.exists(),
        "the claim is gone once every letter is resolved"
    );
    assert!(
        !dead.exists() || std::fs::read_to_string(&dead).unwrap().trim().is_empty(),
        "nothing left in the file"
    );
    let rejected = std::fs::read_to_string(dead.with_file_name("dead.jsonl.rejected")).unwrap();
    let rejected: Vec<&str> = rejected.lines().collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected.contains(&"not a letter at all"),
        "kept byte for byte"
    );
    let too_large = rejected
        .iter()
        .find(|line| line.contains(r#""seq":4"#))
        .expect("the oversized letter");
    assert!(
        too_large.contains("MessageSizeTooLarge"),
        "{}",
        &too_large[..300]
    );

    let records = consume(&topic, 3, Duration::from_secs(5)).await;
    assert_eq!(
        seqs(&records),
        BTreeSet::from([1, 2, 3]),
        "the deliverable letters are in Kafka"
    );
    assert_eq!(records.len(), 3, "each once");
    assert!(records
        .iter()
        .all(|record| record.key.as_deref() == Some("t")));
    app.stop().await;
}

/// A small filesystem of the test's own (tmpfs), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(bytes: usize) -> SmallDisk {
        let dir = scratch_file("small-disk");
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            mounted.success(),
            "mounting a tmpfs needs root, as CI has: {mounted}"
        );
        SmallDisk(dir)
    }

    /// Writes until the disk is full; returns the file that filled it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_data())
            .is_ok()
        {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The dead-letter file is `queued`'s safety net. Its disk filled while the bridge ran once
/// left it ready and acknowledging: with the broker then gone, 100 of 100 acknowledged
/// callbacks reached neither Kafka nor the file. Now the file's disk is proven every second;
/// while it cannot take a write the bridge answers 503 and is not ready, and once it can
/// again, it takes callbacks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_dead_letter_disk_stops_queued_from_acknowledging() {
    let disk = SmallDisk::mount(256 * 1024);
    let dead = disk.0.join("dead.jsonl");
    let app = spawn_products_app_with(&[
        ("ZEGO_BRIDGE_ACK_MODE", "queued"),
        ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
    ])
    .await;
    assert_eq!(app.post_signed(&mix_stop(1)).await.status, 200);
    let filler = disk.fill();
    app.wait_for_readiness(503, Duration::from_secs(5)).await;
    let (_, body) = app.get("/readyz").await;
    assert!(body.contains("dead-letter file"), "{body}");
    let refused = app.post_signed(&mix_stop(2)).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("dead-letter file"),
        "{:?}",
        refused.body
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("zego_bridge_dead_letter_file_writable 0"),
        "{metrics}"
    );
    std::fs::remove_file(filler).unwrap();
    app.wait_for_readiness(200, Duration::from_secs(5)).await;
    assert_eq!(app.post_signed(&mix_stop(3)).await.status, 200);
    assert!(app
        .metrics()
        .await
        .contains("zego_bridge_dead_letter_file_writable 1"));
}

/// What cannot keep letters is refused at start, with the setting named, and at once: a FIFO
/// once hung the start, and `/dev/full` started ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_path_that_cannot_keep_letters_stops_the_start() {
    let fifo = scratch_file("dead.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let disk = SmallDisk::mount(64 * 1024);
    disk.fill();
    let on_full_disk = disk.0.join("dead.jsonl");
    for path in [
        fifo.as_path(),
        std::path::Path::new("/dev/full"),
        &on_full_disk,
    ] {
        let started = Instant::now();
        let prefix = unique_prefix();
        let outcome = try_spawn_app_on(
            &prefix,
            &brokers(),
            &[("ZEGO_BRIDGE_DEAD_LETTER_PATH", path.to_str().unwrap())],
        )
        .await;
        let err = match outcome {
            Ok(_) => panic!("{} was taken", path.display()),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("ZEGO_BRIDGE_DEAD_LETTER_PATH"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{path:?}");
    }
}

/// Kafka's `max.message.bytes` limits a whole record batch, and the broker refuses the batch:
/// every record in it failed with `MessageSizeTooLarge`, though each fit alone. 400 letters of
/// about 20 KiB, to a topic that takes 64 KiB, once went 381 of 400 to `<file>.rejected`, which
/// nothing retries. Each record of a refused batch is now sent again in a batch of its own:
/// all 400 are delivered, and only the one letter that cannot fit alone is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_as_too_large_is_sent_again_record_by_record() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let topic = format!("{prefix}.mix.stopped");
    limit_topic_to(&topic, 65536).await;
    let dead = scratch_file("dead.jsonl");
    // Incompressible: the producer compresses batches, and Kafka limits them compressed.
    let noise = |bytes: usize, seed: u64| {
        let mut state = seed | 1;
        (0..bytes / 16)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("{state:016x}")
            })
            .collect::<String>()
    };
    let letter = |seq: usize, pad: &str| {
        format!(
            r#"{{"failed_at":"2026-12-01T00:00:00.000Z","error":"Message timed out","topic":"{topic}","key":"k{}","headers":{{"ce_id":"00000000-0000-4000-8000-{seq:012}"}},"event":{{"type":"mix.stopped","seq":{seq},"pad":"{pad}"}}}}"#,
            seq % 3
        )
    };
    let mut letters: Vec<String> = (1..=400)
        .map(|seq| letter(seq, &noise(20 * 1024, seq as u64)))
        .collect();
    letters.push(letter(401, &noise(80 * 1024, 401)));
    std::fs::write(&dead, letters.join("\n") + "\n").unwrap();
    let app = spawn_app_on(
        &prefix,
        &brokers(),
        &[
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
            ("ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS", "300"),
        ],
    )
    .await;
    let metrics = wait_for(
        &app,
        r#"zego_bridge_dead_letter_retries_total{outcome="delivered"} 400"#,
        Duration::from_secs(60),
    )
    .await;
    let rejected =
        std::fs::read_to_string(dead.with_file_name("dead.jsonl.rejected")).unwrap_or_default();
    let rejected: Vec<&str> = rejected.lines().collect();
    let sent_alone = metric_sum(&metrics, "zego_bridge_events_sent_alone_total");
    eprintln!(
        "FIGURES batch-too-large-400x20KiB-topic-64KiB: delivered_series_present={} rejected={} sent_alone={sent_alone}",
        metrics.contains(r#"zego_bridge_dead_letter_retries_total{outcome="delivered"} 400"#),
        rejected.len()
    );
    assert!(
        metrics.contains(r#"zego_bridge_dead_letter_retries_total{outcome="delivered"} 400"#),
        "{metrics}"
    );
    assert!(
        sent_alone > 0.0,
        "batches were refused and resent: {metrics}"
    );
    assert_eq!(rejected.len(), 1, "only the letter that cannot fit alone");
    assert!(rejected[0].contains(r#""seq":401"#));
    let records = consume(&topic, 400, Duration::from_secs(20)).await;
    assert_eq!(
        seqs(&records).len(),
        400,
        "every letter that fits is in Kafka"
    );
}
