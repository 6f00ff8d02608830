//! Ack mode `spooled`: 200 once on local disk; the spool drains to Kafka in order, rides out
//! outages, refuses when full, and survives SIGKILL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn spool_dir() -> PathBuf {
    std::env::temp_dir().join(format!("zkb-spool-{}", unique_prefix()))
}

fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_acknowledges_from_disk_and_drains_everything_to_kafka() {
    let dir = spool_dir();
    let app = spawn_app_with(&[
        ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
        ("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()),
    ])
    .await;
    let accepted = post_parallel(&app.callbacks_url, 0..200, 40).await;
    assert_eq!(accepted.len(), 200);
    let records = consume(&app.topic("mix.started"), 200, Duration::from_secs(15)).await;
    assert_eq!(
        seqs(&records),
        accepted,
        "every spooled event reached Kafka"
    );
    let metrics = app.metrics().await;
    let written = metric(&metrics, "zego_bridge_spool_events_written_total");
    let fsyncs = metric(&metrics, "zego_bridge_spool_fsyncs_total");
    assert_eq!(written, 200.0, "{metrics}");
    assert!(
        fsyncs < written,
        "concurrent appends share fsyncs (group commit): {fsyncs} fsyncs for {written} events"
    );
    let report = app.stop().await;
    assert_eq!(report.left_in_spool, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_outage_is_ridden_out_by_the_spool() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let dir = spool_dir();
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[
            ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
            ("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()),
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "0"),
        ],
    )
    .await;
    cluster.broker_down(1).unwrap();
    let accepted = post_parallel(&app.callbacks_url, 0..50, 10).await;
    assert_eq!(
        accepted.len(),
        50,
        "the spool takes callbacks while Kafka is away"
    );
    assert_eq!(app.get("/readyz").await.0, 200, "and stays ready");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.broker_up(1).unwrap();
    let started = Instant::now();
    loop {
        let metrics = app.metrics().await;
        if metric(&metrics, "zego_bridge_spool_pending_events") == 0.0
            && metrics.contains(&format!(r#"zego_bridge_kafka_deliveries_total{{outcome="delivered",topic="{prefix}.mix.started"}} 50"#))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the spool did not drain:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.stop().await.left_in_spool, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_answers_503_and_frees_itself_once_drained() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let dir = spool_dir();
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[
            ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
            ("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()),
            ("ZEGO_BRIDGE_SPOOL_MAX_BYTES", "1048576"),
        ],
    )
    .await;
    cluster.broker_down(1).unwrap();
    let mut accepted = 0;
    let mut full = None;
    for seq in 0..5000 {
        let answer = app.post_signed(&mix_start(seq)).await;
        if answer.status == 503 {
            full = Some(answer);
            break;
        }
        assert_eq!(answer.status, 200);
        accepted += 1;
    }
    let full = full.expect("the 1 MiB spool filled up");
    assert!(
        full.body["message"]
            .as_str()
            .unwrap()
            .contains("spool is full"),
        "{:?}",
        full.body
    );
    assert_eq!(full.retry_after.as_deref(), Some("2"));
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    cluster.broker_up(1).unwrap();
    let started = Instant::now();
    while app.post_signed(&mix_start(100_000)).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the spool never freed space"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        accepted > 500,
        "a 1 MiB spool holds many events: {accepted}"
    );
    app.stop().await;
}

async fn start_bridge(prefix: &str, dir: &Path) -> BridgeProcess {
    let brokers = brokers();
    BridgeProcess::start(&[
        ("ZEGO_BRIDGE_KAFKA_BROKERS", brokers.as_str()),
        ("ZEGO_BRIDGE_CALLBACK_SECRETS", SECRET),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix),
        ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
        ("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_that_was_acknowledged() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let dir = spool_dir();
    let bridge = start_bridge(&prefix, &dir).await;
    // Post in the background while the bridge is killed in the middle.
    let posting = load_until_gone(&bridge.callbacks_url);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !posting.is_finished(),
        "the load is running when the bridge is killed"
    );
    bridge.kill();
    let load = posting.await.unwrap();
    let accepted = load.accepted.clone();
    assert!(
        !accepted.is_empty(),
        "callbacks were accepted before the kill"
    );

    // Restarted on the same spool, it publishes what it had not delivered.
    let bridge = start_bridge(&prefix, &dir).await;
    // At least once: a record delivered just before the kill may come again; read past them.
    let records = consume(
        &format!("{prefix}.mix.started"),
        accepted.len() * 2,
        Duration::from_secs(5),
    )
    .await;
    let delivered = seqs(&records);
    report_figures(
        "bridge-sigkill-spooled-then-restart",
        load.sent,
        accepted.len(),
        &records,
        0,
    );
    let lost: Vec<&usize> = accepted
        .iter()
        .filter(|seq| !delivered.contains(seq))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost: {lost:?}",
        lost.len()
    );
    let (code, output) = bridge.terminate();
    assert_eq!(code, Some(0), "{output}");
}
