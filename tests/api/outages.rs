//! Real processes under load: the broker killed and restarted, the broker frozen, and the
//! bridge stopped with SIGTERM in every ack mode. Every callback answered 200 is found in Kafka
//! (or, where the mode says so, in the dead-letter file).

use std::time::Duration;

use crate::helpers::*;

/// What happens to the broker while the bridge is under load.
enum BrokerFault {
    /// `kill -9`, 2 s down, then started again on the same port and storage.
    KillAndRestart,
    /// `SIGSTOP` for 3 s, then `SIGCONT`: far shorter than `message.timeout.ms` (tansu breaks
    /// when an idempotent producer's messages time out; longer outages are tested on the
    /// mock cluster).
    Freeze,
}

/// Runs a paced load against a bridge on a tansu of its own, injects the fault 0.5 s in, and
/// checks that every callback answered 200 is in Kafka or dead-lettered.
async fn survives(fault: BrokerFault, name: &str) {
    let mut tansu = Tansu::start().await;
    let prefix = unique_prefix();
    create_topics_on(&tansu.bootstrap, &prefix).await;
    let dead = scratch_file("dead.jsonl");
    let app = spawn_app_on(
        &prefix,
        &tansu.bootstrap,
        &[
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "60000"),
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
        ],
    )
    .await;
    let url = app.callbacks_url.clone();
    // Paced: the point is load across the fault, and sqlite-backed tansu reads back slowly.
    let posting = tokio::spawn(async move {
        post_during(
            &url,
            Duration::from_secs(5),
            5,
            Duration::from_millis(600),
            Duration::from_millis(10),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    match fault {
        BrokerFault::KillAndRestart => {
            tansu.kill();
            tokio::time::sleep(Duration::from_secs(2)).await;
            tansu.restart().await;
        }
        BrokerFault::Freeze => {
            tansu.freeze();
            tokio::time::sleep(Duration::from_secs(3)).await;
            tansu.thaw();
        }
    }
    let load = posting.await.unwrap();
    assert!(
        load.accepted_after_mark > 50,
        "the load spanned the fault: {}",
        load.accepted_after_mark
    );
    let records = consume_from(
        &tansu.bootstrap,
        &app.topic("mix.started"),
        load.accepted.len() * 2,
        Duration::from_secs(10),
    )
    .await;
    app.stop().await;
    let dead = dead_lettered_seqs(&dead);
    report_figures(name, load.sent, load.accepted.len(), &records, dead.len());
    assert_all_accounted(&load.accepted, &seqs(&records), &dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_killed_and_restarted_under_load_loses_nothing() {
    survives(BrokerFault::KillAndRestart, "broker-kill-9-and-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_loses_nothing() {
    survives(BrokerFault::Freeze, "broker-sigstop-3s").await;
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
