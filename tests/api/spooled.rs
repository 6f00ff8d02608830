//! Ack mode `spooled`: 200 once on local disk; the spool drains to Kafka in order, rides out
//! outages, refuses when full, and survives SIGKILL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn spool_dir() -> PathBuf {
    std::env::temp_dir().join(format!("zkb-spool-{}", unique_prefix()))
}

/// The value of an unlabelled series. Missing is a failure, not 0: a gauge that is never
/// exported would otherwise pass every "drained to 0" check.
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
    // The gauges show what the spool holds, so that draining to 0 below means something.
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "zego_bridge_spool_pending_events"),
        50.0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "zego_bridge_spool_bytes") > 50.0 * 300.0,
        "{metrics}"
    );
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

/// The `seq` of each event in a spool's bytes, by reading its records.
fn seqs_in_spool_bytes(bytes: &[u8]) -> Vec<usize> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices(r#"\"seq\":"#)
        .filter_map(|(at, pattern)| {
            let rest = &text[at + pattern.len()..];
            let digits = rest.find(|c: char| !c.is_ascii_digit())?;
            rest[..digits].parse().ok()
        })
        .collect()
}

/// One flipped byte in the middle of a segment that is not the last: every other record is
/// published, the damaged one is in quarantine (counted and logged), the bridge stays ready,
/// and callbacks accepted afterwards are published too. It once published only the records
/// before the damage, stalled without a word, and acknowledged new callbacks it never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_spool_segment_loses_only_the_damaged_record() {
    let prefix = unique_prefix();
    let dir = spool_dir();
    let spooled = [
        ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
        ("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()),
        ("ZEGO_BRIDGE_SPOOL_MAX_BYTES", "1048576"),
        ("ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS", "500"),
    ];
    // Kafka away: everything stays in the spool, across several 128 KiB segments.
    let accepted = {
        let cluster = mock_cluster(&prefix);
        let app = spawn_app_on(&prefix, &cluster.bootstrap_servers(), &spooled).await;
        cluster.broker_down(1).unwrap();
        let accepted = post_parallel(&app.callbacks_url, 0..600, 20).await;
        assert_eq!(accepted.len(), 600);
        assert_eq!(app.stop().await.left_in_spool, 600);
        accepted
    };
    let segments: Vec<PathBuf> = {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.to_string_lossy().ends_with(".log"))
            .collect();
        paths.sort();
        paths
    };
    assert!(segments.len() >= 3, "{segments:?}");
    let victim = &segments[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(victim, &bytes).unwrap();

    create_topics(&prefix).await;
    let app = spawn_app_on(&prefix, &brokers(), &spooled).await;
    assert_eq!(app.get("/readyz").await.0, 200, "ready despite the damage");
    let after = 1000..1020;
    for seq in after.clone() {
        assert_eq!(app.post_signed(&mix_start(seq)).await.status, 200);
    }
    let expected = accepted.len() - 1 + after.len();
    let records = consume_until(
        &brokers(),
        &app.topic("mix.started"),
        Duration::from_secs(20),
        |records| seqs(records).len() >= expected,
    )
    .await;
    let delivered = seqs(&records);
    let missing: Vec<&usize> = accepted
        .iter()
        .filter(|seq| !delivered.contains(seq))
        .collect();
    assert_eq!(
        missing.len(),
        1,
        "only the damaged record is missing: {missing:?}"
    );
    assert!(
        after.clone().all(|seq| delivered.contains(&seq)),
        "new callbacks are published"
    );
    let quarantine: Vec<PathBuf> = std::fs::read_dir(dir.join("quarantine"))
        .expect("a quarantine directory")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    let kept = std::fs::read(&quarantine[0]).unwrap();
    assert_eq!(
        seqs_in_spool_bytes(&kept),
        vec![*missing[0]],
        "the damaged record is kept"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"zego_bridge_spool_quarantined_total{cause="damaged"} 1"#),
        "{metrics}"
    );
    app.stop().await;
}

/// An event larger than Kafka takes: refused with 413 when the producer's own limit says so;
/// when only the broker refuses it, dead-lettered in every mode, and the events behind it still
/// flow (in `spooled` it once blocked the drainer for ever; in `queued` it got 503 for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_kafka_can_never_take_neither_blocks_nor_loops() {
    let big = |seq: usize, bytes: usize| {
        // Random, so that compression cannot shrink it under the broker's limit.
        let noise: String = (0..bytes)
            .map(|_| {
                char::from(
                    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        [rand::random::<u8>() as usize % 62],
                )
            })
            .collect();
        format!(
            r#"{{"event":"mix_start","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"{seq}","noise":"{noise}"}}"#
        )
    };
    // The producer's limit (1 MB by default) is known: 413 at once, nothing acknowledged.
    let app = spawn_app_with(&[("ZEGO_BRIDGE_MAX_BODY_BYTES", "4194304")]).await;
    let answer = app.post_signed(&big(1, 1_500_000)).await;
    assert_eq!(answer.status, 413, "{:?}", answer.body);
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .contains("message.max.bytes"));
    app.stop().await;

    // The producer allows 3 MB, the broker 1 MiB, and zstd compresses: the bridge cannot tell
    // up front how small zstd stores it (with lz4 or none it can, and answers 413:
    // `an_event_its_topic_cannot_take_is_refused_413_before_it_is_acknowledged`), so only
    // Kafka can say no.
    for mode in ["queued", "spooled"] {
        let dir = spool_dir();
        let dead = scratch_file("dead.jsonl");
        let mut vars = vec![
            ("ZEGO_BRIDGE_ACK_MODE", mode),
            ("ZEGO_BRIDGE_MAX_BODY_BYTES", "4194304"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_MESSAGE_MAX_BYTES", "3000000"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_COMPRESSION_TYPE", "zstd"),
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
        ];
        if mode == "spooled" {
            vars.push(("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()));
        }
        let app = spawn_app_with(&vars).await;
        let answer = app.post_signed(&big(1, 1_500_000)).await;
        assert_eq!(answer.status, 200, "{mode}: {:?}", answer.body);
        for seq in 2..12 {
            assert_eq!(app.post_signed(&mix_start(seq)).await.status, 200, "{mode}");
        }
        let records = consume(&app.topic("mix.started"), 10, Duration::from_secs(15)).await;
        assert_eq!(
            seqs(&records),
            (2..12).collect(),
            "{mode}: the events behind the big one are published"
        );
        let started = Instant::now();
        while dead_lettered_seqs(&dead) != std::collections::BTreeSet::from([1]) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{mode}: the big event was not dead-lettered"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        app.stop().await;
    }
}

/// A disk that fills up and then frees space: callbacks get 503 and readiness fails while the
/// spool cannot write; both recover by themselves once it can; past the grace, liveness fails
/// so that Kubernetes restarts the pod. The spool sits on a 2 MiB tmpfs of its own (mounting one
/// needs root, as CI has; elsewhere the test says so and stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_whose_disk_fills_up_recovers_when_it_empties() {
    let mount = spool_dir();
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mount)
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    if !mounted {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must be able to mount a tmpfs for this test"
        );
        eprintln!("SKIPPED a_spool_whose_disk_fills_up_recovers_when_it_empties: mounting a tmpfs needs root");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let dir = mount.join("spool");
    let app = spawn_app_with(&[
        ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
        ("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()),
        ("ZEGO_BRIDGE_SPOOL_MAX_BYTES", "1048576"),
        ("ZEGO_BRIDGE_SPOOL_LIVENESS_GRACE_MS", "3000"),
    ])
    .await;
    assert_eq!(app.post_signed(&mix_start(0)).await.status, 200);
    // Fill the rest of the disk.
    let filler = mount.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut refused = 0;
    for seq in 1..40 {
        match app.post_signed(&mix_start(seq)).await.status {
            200 => {}
            503 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused > 0, "a full disk refuses callbacks");
    let (ready, body) = app.get("/readyz").await;
    assert_eq!(ready, 503, "{body}");
    assert_eq!(app.get("/healthz").await.0, 200, "alive within the grace");
    let metrics = app.metrics().await;
    assert!(
        metric(&metrics, "zego_bridge_spool_write_failures_total") > 0.0,
        "{metrics}"
    );
    // Past the grace, liveness fails: only a restart can help now.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (alive, body) = app.get("/healthz").await;
    assert_eq!(alive, 503, "{body}");
    // Space comes back: the spool recovers by itself, without a request to try.
    std::fs::remove_file(&filler).unwrap();
    app.wait_for_readiness(200, Duration::from_secs(10)).await;
    assert_eq!(app.get("/healthz").await.0, 200);
    let accepted_after = post_parallel(&app.callbacks_url, 100..120, 5).await;
    assert_eq!(accepted_after.len(), 20);
    let records = consume_until(
        &brokers(),
        &app.topic("mix.started"),
        Duration::from_secs(15),
        |records| seqs(records).is_superset(&accepted_after),
    )
    .await;
    let delivered = seqs(&records);
    assert!(delivered.contains(&0) && delivered.is_superset(&accepted_after));
    app.stop().await;
}
