//! Real processes under load: Apache Kafka clusters of three brokers failing in every way an
//! operator meets (a leader killed, a broker frozen, two brokers down, an outage longer than
//! `message.timeout.ms`, a rolling restart, the whole cluster restarted), each with one bridge
//! per ack mode under load; and the bridge stopped with SIGTERM in every ack mode. Every
//! callback answered 200 is found in Kafka or, where the mode says so, in the dead-letter file.
//!
//! The cluster tests are named `three_brokers_*`; `scripts/test` runs them one at a time after
//! the rest, as each starts four JVMs of its own.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::helpers::*;
use crate::kafka_cluster::{KafkaCluster, NodeAction};

const MODES: [&str; 3] = ["queued", "delivered", "spooled"];

/// One bridge per ack mode, each with topics of its own on the same cluster.
struct ModeBridge {
    mode: &'static str,
    app: TestApp,
    dead: PathBuf,
}

async fn bridges_on(cluster: &KafkaCluster, extra: &[(&str, &str)]) -> Vec<ModeBridge> {
    let mut bridges = Vec::new();
    for mode in MODES {
        let prefix = unique_prefix();
        create_replicated_topics(&cluster.bootstrap, &prefix, 3).await;
        let dead = scratch_file("dead.jsonl");
        let spool = scratch_file("spool");
        let mut vars = vec![
            ("ZEGO_BRIDGE_ACK_MODE", mode),
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
            ("ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS", "20000"),
            // Dead letters are sent again within a second of Kafka's return.
            ("ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS", "1000"),
        ];
        if mode == "spooled" {
            vars.push(("ZEGO_BRIDGE_SPOOL_DIR", spool.to_str().unwrap()));
        }
        // A mode's own setting is refused in the other modes.
        vars.extend(
            extra.iter().filter(|(name, _)| {
                mode == "delivered" || *name != "ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS"
            }),
        );
        let app = spawn_app_on(&prefix, &cluster.bootstrap, &vars).await;
        wait_for_topics(&app).await;
        warm_up(&app).await;
        bridges.push(ModeBridge { mode, app, dead });
    }
    bridges
}

/// Every `mix_start` of the load has the key `t`, so one partition takes all of it: librdkafka's
/// default partitioner (`consistent_random`) maps a key to CRC-32 modulo the partition count.
fn busiest_partition() -> i32 {
    (crc32fast::hash(b"t") % PARTITIONS as u32) as i32
}

/// A client for metadata and offsets; its calls block.
fn metadata_client(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap()
}

/// The broker leading `partition` of `topic`, from the cluster's metadata.
async fn leader_of(bootstrap: &str, topic: &str, partition: i32) -> i32 {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let metadata = metadata_client(&bootstrap)
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .expect("the partition")
            .leader()
    })
    .await
    .unwrap()
}

/// Acknowledged events the reading consumer did not find: says where they could have gone (the
/// partitions' offsets, a second read by a new consumer) and returns what the second read
/// found, which is in Kafka after all.
async fn explain_missing(
    bootstrap: &str,
    topic: &str,
    expected: &BTreeSet<usize>,
    found: &BTreeSet<usize>,
) -> BTreeSet<usize> {
    let missing: BTreeSet<usize> = expected.difference(found).copied().collect();
    let watermarks = {
        let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            let client = metadata_client(&bootstrap);
            (0..PARTITIONS)
                .map(|partition| {
                    let marks = client.fetch_watermarks(&topic, partition, Duration::from_secs(10));
                    format!("p{partition} {marks:?}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .await
        .unwrap()
    };
    let again = seqs(
        &consume_until(bootstrap, topic, Duration::from_secs(20), |records| {
            seqs(records).is_superset(&missing)
        })
        .await,
    );
    let found_again: BTreeSet<usize> = missing.intersection(&again).copied().collect();
    eprintln!(
        "MISSING from the first read of {topic}: {} events, e.g. {:?}; a second read found {} of them; \
         offsets (low, high): {watermarks}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        found_again.len(),
    );
    found_again
}

/// What one mode's bridge saw under a fault.
struct ModeOutcome {
    mode: &'static str,
    load: Load,
    /// Callbacks answered 200 while the fault lasted.
    accepted_during: usize,
    /// Events written to the dead-letter file during the run (all sent again by the bridge
    /// itself before it stopped: none is left in the file).
    dead_lettered: usize,
}

/// The non-zero series of `zego_bridge_unavailable_total`, as `reason=count` pairs: why the
/// bridge answered 503, for the figures printed with each scenario.
fn refusal_reasons(metrics: &str) -> String {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("zego_bridge_unavailable_total{reason=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .filter(|(_, count)| *count != "0")
        .map(|(reason, count)| format!("{reason}={count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits until the bridge's own probe lists every one of its topics: a broker can answer
/// metadata from a view that lags the topics just created, and the bridge refuses the
/// callbacks of a topic it believes missing, which would blur what the fault did.
async fn wait_for_topics(app: &TestApp) {
    let since = Instant::now();
    loop {
        let metrics = app.metrics().await;
        let missing = metrics.lines().any(|line| {
            line.starts_with("zego_bridge_kafka_topic_missing{") && line.ends_with(" 1")
        });
        if !missing {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the bridge still misses topics 15 s after they were created:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the bridge has delivered a record to Kafka.
fn delivered_any(metrics: &str) -> bool {
    metrics.lines().any(|line| {
        line.starts_with(r#"zego_bridge_kafka_deliveries_total{outcome="delivered""#)
            && !line.ends_with(" 0")
    })
}

/// Sends one callback of another type than the load's until it is taken and delivered, so that
/// the producer knows the cluster before the load begins: the first second of load, before the
/// fault, is then accepted in every mode (`delivered` included, whose first request otherwise
/// waits for the producer's first metadata and connections).
async fn warm_up(app: &TestApp) {
    let body = r#"{"event":"mix_stop","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"warm-up","seq":"0"}"#;
    let since = Instant::now();
    while app.post_signed(body).await.status != 200 {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the bridge takes no callback 30 s after its start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while !delivered_any(&app.metrics().await) {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the warm-up callback was not delivered within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a fault did, for the assertions that follow it.
struct Window {
    /// From the start of the load: when the fault began and when it was repaired.
    began: Duration,
    repaired: Duration,
}

/// Runs a paced load on one bridge per ack mode, lets `fault` act on the cluster 1 s in, goes on
/// 3 s past the repair, and checks every mode: each callback answered 200 is in Kafka or
/// dead-lettered (after `replay` where the mode dead-letters by design). Returns the loads and the
/// window for scenario-specific checks.
async fn under_fault<F, Fut>(name: &str, extra: &[(&str, &str)], fault: F) -> Vec<ModeOutcome>
where
    F: FnOnce(std::sync::Arc<KafkaCluster>, i32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let cluster = std::sync::Arc::new(KafkaCluster::start(3, false).await);
    let bridges = bridges_on(&cluster, extra).await;
    let leader = leader_of(
        &cluster.bootstrap,
        &bridges[0].app.topic("mix.started"),
        busiest_partition(),
    )
    .await;
    let stop = StopFlag::default();
    let started = Instant::now();
    let loads: Vec<_> = bridges
        .iter()
        .map(|bridge| {
            let (url, stop) = (bridge.app.callbacks_url.clone(), stop.clone());
            tokio::spawn(async move { post_until(&url, stop, 4, Duration::from_millis(20)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let began = started.elapsed();
    fault(cluster.clone(), leader).await;
    let window = Window {
        began,
        repaired: started.elapsed(),
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for (bridge, load) in bridges.into_iter().zip(loads) {
        let load = load.await.unwrap();
        let ModeBridge { mode, app, dead } = bridge;
        let topic = app.topic("mix.started");
        let accepted_during = load.count_between(200, window.began, window.repaired);
        if mode == "spooled" {
            // The spool rides the fault out: it drains by itself once Kafka is back.
            let drained = Instant::now();
            loop {
                let metrics = app.metrics().await;
                if metrics.contains("zego_bridge_spool_pending_events 0\n") {
                    break;
                }
                assert!(
                    drained.elapsed() < Duration::from_secs(90),
                    "{name}: the spool did not drain:\n{metrics}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        // Whatever was dead-lettered during the fault is sent again by the bridge itself once
        // Kafka is back: nothing is left for an operator to replay.
        let retried = Instant::now();
        let (dead_count, refusals, producer) = loop {
            let metrics = app.metrics().await;
            let dead = metric_sum(&metrics, "zego_bridge_dead_lettered_total");
            let resolved = metric_sum(&metrics, "zego_bridge_dead_letter_retries_total")
                - metric_sum(
                    &metrics,
                    "zego_bridge_dead_letter_retries_total{outcome=\"kept\"}",
                );
            if resolved >= dead {
                break (
                    dead as usize,
                    refusal_reasons(&metrics),
                    format!(
                        "producer rebuilds {}, events rescued {}",
                        metric_sum(&metrics, "zego_bridge_producer_rebuilds_total"),
                        metric_sum(&metrics, "zego_bridge_rescued_total")
                    ),
                );
            }
            assert!(
                retried.elapsed() < Duration::from_secs(60),
                "{name}-{mode}: dead letters not retried:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        // A clean stop drains the producer.
        let before_stop = app.metrics().await;
        let report = app.stop().await;
        assert_eq!(report.left_in_spool, 0, "{name}-{mode}");
        let left = dead_lettered_seqs(&dead);
        // Should the producer still hold events at the stop, say what it was doing.
        assert!(
            left.is_empty(),
            "{name}-{mode}: {} events left in the dead-letter file ({} undelivered at the \
             shutdown deadline), {:.1} s after the repair; their reasons: {:?}; the producer \
             before the stop:\n{}",
            left.len(),
            report.undelivered,
            started
                .elapsed()
                .saturating_sub(window.repaired)
                .as_secs_f64(),
            dead_letter_reasons(&dead),
            producer_lines(&before_stop)
        );
        let expected = &load.accepted;
        let records = consume_until(
            &cluster.bootstrap,
            &topic,
            Duration::from_secs(20),
            |records| seqs(records).is_superset(expected),
        )
        .await;
        report_figures(
            &format!("{name}-{mode}"),
            load.sent,
            load.accepted.len(),
            &records,
            dead_count,
        );
        let refused_at = |during: &dyn Fn(Duration) -> bool| {
            load.answers
                .iter()
                .filter(|(_, status, at)| *status != 200 && during(*at))
                .map(|(_, _, at)| *at)
                .collect::<Vec<_>>()
        };
        let refused_during = refused_at(&|at| at >= window.began && at < window.repaired);
        let refused_after = refused_at(&|at| at >= window.repaired);
        eprintln!(
            "WINDOW {name}-{mode}: fault {:.1?}..{:.1?}, 200s in it {accepted_during}, other answers in it {}; \
             after the repair {} other answers, the last {:.1?} after it; 503s by reason over the run: {refusals}; {producer}",
            window.began,
            window.repaired,
            refused_during.len(),
            refused_after.len(),
            refused_after.last().map_or(Duration::ZERO, |at| *at - window.repaired),
        );
        let mut delivered = seqs(&records);
        if !delivered.is_superset(expected) {
            delivered
                .extend(explain_missing(&cluster.bootstrap, &topic, expected, &delivered).await);
        }
        assert!(!load.accepted.is_empty(), "{name}-{mode}: nothing accepted");
        assert_all_accounted(&load.accepted, &delivered, &BTreeSet::new());
        if mode == "spooled" {
            // The mode's promise: whatever Kafka does, the spool takes every callback.
            assert_eq!(
                load.accepted.len(),
                load.sent,
                "{name}-spooled refused callbacks; 503s by reason: {refusals}"
            );
        }
        results.push(ModeOutcome {
            mode,
            load,
            accepted_during,
            dead_lettered: dead_count,
        });
    }
    results
}

/// `zego-kafka-bridge replay FILE`, as an operator runs it after an outage.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_leader_killed_and_restarted() {
    under_fault("kafka3-leader-kill-9", &[], |cluster, leader| async move {
        cluster.node(NodeAction::Kill, leader).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        cluster.node(NodeAction::Start, leader).await;
    })
    .await;
}

/// Frozen for 15 s: past the broker session timeout (3 s in the harness: the controller fences
/// it and moves its leaderships) and past the producer's request timeout, shortened here to 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_leader_frozen_then_resumed() {
    under_fault(
        "kafka3-leader-sigstop-15s",
        &[("ZEGO_BRIDGE_LIBRDKAFKA_REQUEST_TIMEOUT_MS", "10000")],
        |cluster, leader| async move {
            cluster.node(NodeAction::Freeze, leader).await;
            tokio::time::sleep(Duration::from_secs(15)).await;
            cluster.node(NodeAction::Thaw, leader).await;
        },
    )
    .await;
}

/// Two of three brokers down: `acks=all` with `min.insync.replicas=2` cannot be met. `queued`
/// and `spooled` keep accepting (the producer queue, the spool); `delivered` cannot promise and
/// answers 503. All recover when the brokers return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_two_down_then_back() {
    let results = under_fault(
        "kafka3-two-of-three-down-12s",
        &[("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS", "2000")],
        |cluster, leader| async move {
            let others: Vec<i32> = cluster
                .broker_ids()
                .into_iter()
                .filter(|id| *id != leader)
                .collect();
            for id in &others {
                cluster.node(NodeAction::Kill, *id).await;
            }
            tokio::time::sleep(Duration::from_secs(12)).await;
            for id in &others {
                cluster.node(NodeAction::Start, *id).await;
            }
        },
    )
    .await;
    for outcome in &results {
        let refused = outcome
            .load
            .answers
            .iter()
            .filter(|(_, s, _)| *s == 503)
            .count();
        match outcome.mode {
            "delivered" => assert!(refused > 0, "delivered answered no 503"),
            mode => assert!(
                outcome.accepted_during > 0,
                "{mode} accepted nothing during the outage"
            ),
        }
    }
}
/// Every broker down for 12 s, longer than a `message.timeout.ms` of 6 s: `queued` dead-letters
/// what it had accepted and `replay` republishes it; `spooled` keeps its events on disk and
/// rides the outage out with no dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_outage_longer_than_the_message_timeout() {
    let results = under_fault(
        "kafka3-all-brokers-down-12s-message-timeout-6s",
        &[
            ("ZEGO_BRIDGE_LIBRDKAFKA_MESSAGE_TIMEOUT_MS", "6000"),
            ("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS", "2000"),
        ],
        |cluster, _| async move {
            for id in cluster.broker_ids() {
                cluster.node(NodeAction::Kill, id).await;
            }
            tokio::time::sleep(Duration::from_secs(12)).await;
            cluster.start_all().await;
        },
    )
    .await;
    for outcome in &results {
        if outcome.mode != "delivered" {
            assert!(
                outcome.accepted_during > 0,
                "{} accepted nothing during the outage",
                outcome.mode
            );
        }
        if outcome.mode == "queued" {
            // Acknowledged events outlived message.timeout.ms and were dead-lettered; under_fault
            // checked that the bridge sent every one again once Kafka was back.
            assert!(outcome.dead_lettered > 0, "queued dead-lettered nothing");
        }
        if outcome.mode == "spooled" {
            // Its promise: the spool holds the events until Kafka takes them, whatever
            // `message.timeout.ms` says; nothing is left for the operator to replay.
            assert_eq!(outcome.dead_lettered, 0, "spooled dead-lettered events");
        }
    }
}

/// Each broker in turn stopped cleanly and started again, as a Kafka upgrade does it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_rolling_restart() {
    under_fault("kafka3-rolling-restart", &[], |cluster, _| async move {
        for id in cluster.broker_ids() {
            cluster.node(NodeAction::Stop, id).await;
            cluster.node(NodeAction::Start, id).await;
        }
    })
    .await;
}

/// The whole cluster, controller included, stopped and started again with its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_whole_cluster_restarted() {
    under_fault(
        "kafka3-whole-cluster-restart",
        &[],
        |cluster, _| async move {
            cluster.stop_all().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            cluster.start_all().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_in_any_ack_mode() {
    for mode in ["queued", "delivered", "spooled"] {
        let prefix = unique_prefix();
        create_topics(&prefix).await;
        let dead = scratch_file("dead.jsonl");
        let spool = scratch_file("spool");
        let brokers = brokers();
        let vars = [
            ("ZEGO_BRIDGE_KAFKA_BROKERS", brokers.as_str()),
            ("ZEGO_BRIDGE_CALLBACK_SECRETS", SECRET),
            ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix.as_str()),
            ("ZEGO_BRIDGE_ACK_MODE", mode),
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
        ];
        let spool_var = [("ZEGO_BRIDGE_SPOOL_DIR", spool.to_str().unwrap())];
        let with_spool: Vec<(&str, &str)> = vars
            .iter()
            .chain(if mode == "spooled" {
                &spool_var[..]
            } else {
                &[]
            })
            .copied()
            .collect();
        let bridge = BridgeProcess::start(&with_spool).await;
        let posting = load_until_gone(&bridge.callbacks_url);
        tokio::time::sleep(Duration::from_millis(800)).await;
        // The load is still running at SIGTERM: it only ends when the server is gone.
        assert!(
            !posting.is_finished(),
            "{mode}: the load ended before SIGTERM"
        );
        let (code, output) = bridge.terminate();
        let load = posting.await.unwrap();
        let accepted = load.accepted.clone();
        assert!(
            !accepted.is_empty(),
            "{mode}: nothing was accepted before SIGTERM"
        );
        assert!(
            matches!(code, Some(0) | Some(3)),
            "{mode}: exit {code:?}\n{output}"
        );
        if mode == "spooled" {
            // Whatever was left in the spool goes out at the next start.
            let bridge = BridgeProcess::start(&with_spool).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (code, output) = bridge.terminate();
            assert_eq!(code, Some(0), "{output}");
        }
        let records = consume(
            &format!("{prefix}.mix.started"),
            accepted.len() * 2,
            Duration::from_secs(5),
        )
        .await;
        report_figures(
            &format!("bridge-sigterm-under-load-{mode}"),
            load.sent,
            accepted.len(),
            &records,
            dead_lettered_seqs(&dead).len(),
        );
        assert_all_accounted(&accepted, &seqs(&records), &dead_lettered_seqs(&dead));
        assert!(
            dead_lettered_seqs(&dead).is_empty(),
            "{mode}: a clean SIGTERM dead-letters nothing"
        );
    }
}

/// The latency each ack mode costs, against the test broker: sequential requests, after a
/// warm-up. Printed for docs/RELIABILITY.md; the assertions hold on any machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_latency_by_mode() {
    let mut medians = Vec::new();
    for mode in ["queued", "delivered", "spooled"] {
        let spool = scratch_file("spool");
        let mut vars = vec![("ZEGO_BRIDGE_ACK_MODE", mode)];
        if mode == "spooled" {
            vars.push(("ZEGO_BRIDGE_SPOOL_DIR", spool.to_str().unwrap()));
        }
        let app = spawn_app_with(&vars).await;
        for seq in 0..20 {
            assert_eq!(app.post_signed(&mix_start(seq)).await.status, 200);
        }
        let mut latencies = Vec::new();
        for seq in 20..320 {
            let signed = sign(&mix_start(seq), SECRET);
            let started = std::time::Instant::now();
            assert_eq!(app.post(&signed).await.status, 200);
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let (p50, p99) = (latencies[150], latencies[297]);
        eprintln!(
            "LATENCY {mode}: p50={p50:?} p99={p99:?} (300 sequential callbacks, client-side)"
        );
        medians.push(p50);
        app.stop().await;
    }
    assert!(
        medians[0] < medians[1],
        "queued does not wait for Kafka, delivered does: {medians:?}"
    );
}

/// The only broker killed and started again, with a probe interval far longer than the test:
/// the bridge is not ready while Kafka is away and takes callbacks again within seconds of its
/// return, as Kafka is asked again every second while it is unreachable. Nothing is posted
/// during the outage, so no delivery can tell the bridge that Kafka is back: only the probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_back_is_seen_within_seconds() {
    let cluster = KafkaCluster::start(1, false).await;
    let prefix = unique_prefix();
    create_replicated_topics(&cluster.bootstrap, &prefix, 1).await;
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap,
        &[
            ("ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS", "300000"),
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "0"),
        ],
    )
    .await;
    wait_for_topics(&app).await;
    // Delivered before the broker goes: nothing is left in the queue to be delivered on its
    // return, which would tell the bridge that Kafka is back.
    warm_up(&app).await;
    let broker = cluster.broker_ids()[0];
    cluster.node(NodeAction::Kill, broker).await;
    app.wait_for_readiness(503, Duration::from_secs(30)).await;
    // Returns once the broker answers metadata.
    cluster.node(NodeAction::Start, broker).await;
    let back = Instant::now();
    for seq in 1.. {
        let answer = app.post_signed(&mix_start(seq)).await;
        if answer.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(8),
            "still refused 8 s after the broker was back: {} {:?}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "FIGURES one-broker-back: accepted again {:.1?} after the broker was ready",
        back.elapsed()
    );
    assert_eq!(app.stop().await.undelivered, 0);
}
