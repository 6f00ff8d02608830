//! Health, readiness, metrics, missing topics, an unreachable cluster, and shutdown.

use std::time::{Duration, Instant};

use zego_kafka_bridge::event::catalog;

use crate::helpers::*;

const MIX_STOP: &str = r#"{"event":"mix_stop","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"1"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_are_served_on_the_admin_port() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"code":200,"message":"ready"}"#)
    );
    assert_eq!(app.post_signed(MIX_STOP).await.status, 200);
    // The delivery report arrives shortly after the ack.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = app.metrics().await;
        if metrics.contains(&format!(
            r#"zego_bridge_kafka_deliveries_total{{outcome="delivered",topic="{}"}} 1"#,
            app.topic("mix.stopped")
        )) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for expected in [
        r#"zego_bridge_callbacks_total{status="200",type="mix.stopped"} 1"#,
        &format!(
            r#"zego_bridge_kafka_deliveries_total{{outcome="delivered",topic="{}"}} 1"#,
            app.topic("mix.stopped")
        ),
        "zego_bridge_kafka_delivery_latency_seconds_bucket",
        "zego_bridge_ack_latency_seconds_bucket",
        "zego_bridge_kafka_queue_messages 0",
        "zego_bridge_http_requests_in_flight 0",
        "zego_bridge_kafka_reachable 1",
        "zego_bridge_ready 1",
        &format!(
            r#"zego_bridge_kafka_topic_missing{{topic="{}"}} 0"#,
            app.topic("room.created")
        ),
    ] {
        // Samples only: a HELP text such as "1 when …" must not pass for the value 1.
        assert!(
            metrics
                .lines()
                .any(|line| !line.starts_with('#') && line.contains(expected)),
            "missing {expected}:\n{metrics}"
        );
    }
    assert!(!metrics.contains(SECRET) && !metrics.contains(APP_SECRET));
}

/// The process metrics an SRE expects, and what build runs, with values that must be true of
/// this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_metrics_and_build_info_describe_the_running_process() {
    let app = spawn_app().await;
    assert_eq!(app.post_signed(MIX_STOP).await.status, 200);
    // The CPU counter has a resolution of whole seconds (the prometheus crate's collector):
    // burn a little more than one, so that a counter that never moves fails.
    let burnt = own_cpu_seconds();
    let mut spin = 0u64;
    while own_cpu_seconds() < burnt + 1.2 {
        spin = std::hint::black_box(spin.wrapping_add(1));
    }
    let metrics = app.metrics().await;
    let cpu_now = own_cpu_seconds();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    let rss = value("process_resident_memory_bytes");
    assert!(rss > 4.0 * 1024.0 * 1024.0, "RSS {rss}");
    let cpu = value("process_cpu_seconds_total");
    assert!(
        cpu >= 1.0 && cpu <= cpu_now + 0.01,
        "{cpu} s against {cpu_now} s"
    );
    assert!(value("process_open_fds") >= 3.0);
    let started = value("process_start_time_seconds");
    let now = chrono::Utc::now().timestamp() as f64;
    // The test process (the application runs in it) started within the last hour.
    assert!(
        started <= now && started > now - 3600.0,
        "{started} vs {now}"
    );

    let info = metrics
        .lines()
        .find(|line| line.starts_with("zego_bridge_build_info{"))
        .expect("build_info");
    assert!(info.ends_with("} 1"), "{info}");
    assert!(
        info.contains(&format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            r#"librdkafka="{}""#,
            rdkafka::util::get_rdkafka_version().1
        )),
        "{info}"
    );
    assert!(info.contains(r#"rustc="rustc 1."#), "{info}");
    let commit = info
        .split(r#"git_commit=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a git_commit label");
    // Built from this repository, so the label is the checkout's commit (build.rs reruns when
    // HEAD moves); "unknown" only where there is no `.git`, as in the image's build context.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert_eq!(commit, head);
}

/// librdkafka's statistics of the real producer become the bridge's metrics: one broker, its
/// round trip, the requests and bytes that carried the callbacks, the batches of their topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producers_internals_are_exported_from_librdkafkas_statistics() {
    let app = spawn_app_with(&[("ZEGO_BRIDGE_LIBRDKAFKA_STATISTICS_INTERVAL_MS", "200")]).await;
    let room_close = |session: usize| {
        format!(
            r#"{{"event":"room_close","appid":1,"timestamp":1,"nonce":"n","signature":"s","room_id":"r","room_session_id":{session}}}"#
        )
    };
    for session in 0..20 {
        assert_eq!(app.post_signed(&room_close(session)).await.status, 200);
    }
    let topic = app.topic("room.closed");
    let value = |metrics: &str, prefix: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    };
    // Round trips and batches describe the last statistics interval only: callbacks keep coming
    // while the scrapes look, and each figure must show in one of them.
    let batch = format!(r#"zego_bridge_kafka_batch_messages{{percentile="p99",topic="{topic}"}}"#);
    let mut seen = [false; 5];
    let started = std::time::Instant::now();
    let mut session = 20;
    let mut metrics = String::new();
    while !seen.iter().all(|seen| *seen) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "librdkafka's statistics never showed {seen:?} (sent, rtt, requests, connected, \
             batch):\n{metrics}"
        );
        assert_eq!(app.post_signed(&room_close(session)).await.status, 200);
        session += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        metrics = app.metrics().await;
        let checks = [
            value(&metrics, "zego_bridge_kafka_transmitted_messages_total ")
                .is_some_and(|sent| sent >= 20.0),
            value(&metrics, "zego_bridge_kafka_broker_rtt_seconds{").is_some_and(|rtt| rtt > 0.0),
            value(&metrics, "zego_bridge_kafka_broker_requests_total{")
                .is_some_and(|sent| sent > 0.0),
            value(&metrics, "zego_bridge_kafka_broker_connected{").is_some_and(|up| up == 1.0),
            value(&metrics, &batch).is_some_and(|events| events >= 1.0),
        ];
        for (seen, now) in seen.iter_mut().zip(checks) {
            *seen |= now;
        }
    }
    assert!(
        metrics.contains("zego_bridge_kafka_queue_capacity_bytes 33554432"),
        "{metrics}"
    );
}

/// User and system CPU of this process, from `/proc/self/stat` (in clock ticks of 1/100 s, the
/// value on every Linux this runs on).
fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name in parentheses; utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_reported_its_callbacks_get_503_until_it_is_created() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let missing = format!("{prefix}.nowhere");
    let app = spawn_app_on(
        &prefix,
        &brokers(),
        &[
            ("ZEGO_BRIDGE_TOPIC_MIX_STOPPED", &missing),
            // Far longer than the test: only the recheck of a missing topic can see it appear.
            ("ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS", "300000"),
        ],
    )
    .await;
    let answer = app.post_signed(MIX_STOP).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.retry_after.as_deref(), Some("2"));
    assert!(
        answer.body["message"].as_str().unwrap().contains(&missing),
        "{:?}",
        answer.body
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            r#"zego_bridge_kafka_topic_missing{{topic="{missing}"}} 1"#
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"zego_bridge_unavailable_total{reason="topic_missing"} 1"#),
        "{metrics}"
    );
    // Other types are unaffected, and the pod stays ready.
    let room_close = r#"{"event":"room_close","appid":1,"timestamp":1,"nonce":"n","signature":"s","room_id":"r"}"#;
    assert_eq!(app.post_signed(room_close).await.status, 200);
    assert_eq!(app.get("/readyz").await.0, 200);

    // Created now, as an operator would: accepted within seconds (the bridge asks again after
    // 1, 2, 4… s while a topic is missing), not after the next regular probe 300 s on.
    let layout = zego_kafka_bridge::kafka::TopicLayout {
        partitions: PARTITIONS,
        replication_factor: 1,
    };
    zego_kafka_bridge::kafka::create_topics(&brokers(), &Default::default(), &[missing], layout)
        .await
        .expect("topic created");
    let created = Instant::now();
    loop {
        let status = app.post_signed(MIX_STOP).await.status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            created.elapsed() < Duration::from_secs(15),
            "still refused 15 s after the topic was created"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "FIGURES missing-topic-created: accepted {:.1?} after the topic was created",
        created.elapsed()
    );
}

/// A pod whose topics do not exist yet (the chart's topics Job runs beside it) said it was
/// ready, and the Service sent it callbacks that could only get 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_topic_missing_the_bridge_is_not_ready_until_they_are_created() {
    let prefix = unique_prefix();
    let app = spawn_app_on(
        &prefix,
        &brokers(),
        &[("ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS", "300000")],
    )
    .await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("none of the configured topics exists"),
        "{body}"
    );
    create_topics(&prefix).await;
    let created = Instant::now();
    while app.get("/readyz").await.0 != 200 {
        assert!(
            created.elapsed() < Duration::from_secs(15),
            "not ready 15 s after its topics were created: {}",
            app.get("/readyz").await.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.post_signed(MIX_STOP).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_means_not_ready_and_503() {
    // Nothing listens on port 1.
    let app = spawn_app_on(
        &unique_prefix(),
        "127.0.0.1:1",
        &[("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "0")],
    )
    .await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("Kafka has been unreachable"), "{body}");
    let answer = app.post_signed(MIX_STOP).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.retry_after.as_deref(), Some("2"));
    // Bad requests are still told apart from an outage.
    assert_eq!(
        app.post_raw(Some("application/json"), "nope").await.status,
        400
    );
    assert_eq!(app.stop().await.undelivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_everything_accepted_then_refuses() {
    let app = spawn_app().await;
    let mut accepted = 0;
    for seq in 0..200 {
        let body = MIX_STOP.replace(r#""seq":"1""#, &format!(r#""seq":"{seq}""#));
        if app.post_signed(&body).await.status == 200 {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 200);
    let topic = app.topic("mix.stopped");
    let callbacks_url = app.callbacks_url.clone();
    let report = app.stop().await;
    assert_eq!(report.undelivered, 0);
    let records = consume(&topic, 200, Duration::from_secs(10)).await;
    assert_eq!(
        records.len(),
        200,
        "every accepted callback is in Kafka after shutdown"
    );
    let mut seqs: Vec<i64> = records
        .iter()
        .map(|record| record.value["seq"].as_i64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    // After shutdown nothing is accepted.
    let refused = reqwest::Client::new()
        .post(&callbacks_url)
        .body(MIX_STOP)
        .send()
        .await;
    assert!(refused.is_err(), "the listener is closed after shutdown");
}

#[test]
fn every_type_has_a_schema_file() {
    for kind in catalog::ALL.iter() {
        schema_validator(kind.name);
    }
}

/// `replay` with Kafka away once printed nothing for minutes (each letter waited out its
/// delivery timeout). It now says at once that Kafka cannot be reached, and sends nothing.
#[test]
fn replay_with_kafka_away_says_so_at_once() {
    let letters = scratch_file("dead.jsonl");
    std::fs::write(&letters, "").unwrap();
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zego-kafka-bridge"))
        .env_clear()
        .env("ZEGO_BRIDGE_KAFKA_BROKERS", "127.0.0.1:1")
        .args(["replay", letters.to_str().unwrap()])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot reach Kafka at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
}
