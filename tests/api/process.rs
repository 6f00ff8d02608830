//! The real binary, as an operator runs it.

use std::time::Duration;

use zego_kafka_bridge::sender::{self, Signing};
use zego_kafka_bridge::zego::Product;

use crate::helpers::*;

#[test]
fn bad_configuration_refuses_to_start_naming_the_variable() {
    for (vars, variable) in [
        (
            vec![("ZEGO_BRIDGE_MAX_BODY_BYTES", "lots")],
            "ZEGO_BRIDGE_MAX_BODY_BYTES",
        ),
        (
            vec![("ZEGO_BRIDGE_KAFKA_BROKERS", "k:9092")],
            "ZEGO_BRIDGE_CALLBACK_SECRETS",
        ),
        (
            vec![("ZEGO_BRIDGE_LISTN_ADDR", "0.0.0.0:1")],
            "ZEGO_BRIDGE_LISTN_ADDR",
        ),
        (
            vec![("ZEGO_BRIDGE_LOG_LEVEL", "info,=[")],
            "ZEGO_BRIDGE_LOG_LEVEL",
        ),
    ] {
        let output = bridge_command().envs(vars).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}

/// `check-config` validates as `serve` would, librdkafka's checks included, and prints what the
/// configuration resolves to without a secret.
#[test]
fn check_config_prints_the_effective_configuration_or_names_the_fault() {
    let valid = bridge_command()
        .arg("check-config")
        .envs([
            ("ZEGO_BRIDGE_KAFKA_BROKERS", "127.0.0.1:9"),
            ("ZEGO_BRIDGE_CALLBACK_SECRETS", "topsecret-1"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD", "topsecret-2"),
            ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&valid.stdout);
    assert_eq!(valid.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ZEGO_BRIDGE_ACK_MODE=spooled"), "{stdout}");
    assert!(stdout.contains("message.timeout.ms=0"), "{stdout}");
    assert!(stdout.contains("sasl.password=<redacted>"), "{stdout}");
    assert!(!stdout.contains("topsecret"), "{stdout}");

    // Each property is valid alone; librdkafka refuses them together, and only when a producer
    // is created. Both check-config and serve refuse before serving, naming the variable.
    for command in ["check-config", "serve"] {
        let conflict = bridge_command()
            .arg(command)
            .envs([
                ("ZEGO_BRIDGE_KAFKA_BROKERS", "127.0.0.1:9"),
                ("ZEGO_BRIDGE_CALLBACK_SECRETS", "topsecret-1"),
                ("ZEGO_BRIDGE_LIBRDKAFKA_ACKS", "1"),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&conflict.stderr);
        assert_eq!(conflict.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("ZEGO_BRIDGE_LIBRDKAFKA_ACKS") && stderr.contains("enable.idempotence"),
            "{command}: {stderr}"
        );
    }

    let invalid = bridge_command()
        .arg("check-config")
        .env("ZEGO_BRIDGE_SPOOL_DIR", "/tmp/spool")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert_eq!(invalid.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ZEGO_BRIDGE_SPOOL_DIR"), "{stderr}");
    assert!(invalid.stdout.is_empty());
}

/// Logs written to a file or a pipe (as in a pod) carry no terminal colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_file_have_no_colour_codes() {
    let running = BridgeProcess::start(&[("ZEGO_BRIDGE_LOG_FORMAT", "text")]).await;
    let (code, output) = running.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains(" INFO "), "{output}");
    assert!(!output.contains('\u{1b}'), "{output:?}");
}

#[test]
fn sign_prints_zegos_signature() {
    let output = bridge_command()
        .args([
            "sign",
            "--secret",
            "k",
            "--timestamp",
            "1499676978",
            "--nonce",
            "350176",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let expected = zego_kafka_bridge::zego::sign("k", "1499676978", "350176");
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_without_a_broker_shows_the_whole_path() {
    let running = BridgeProcess::start(&[]).await;
    let send = bridge_command()
        .args([
            "send",
            "--sample",
            "room_close",
            "--url",
            &running.callbacks_url,
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&send.stdout).to_string();
    assert!(send.status.success(), "{printed}");
    assert!(printed.contains("2 of 2 callbacks accepted"), "{printed}");
    // Give the embedded cluster a moment to acknowledge, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, output) = running.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("NOTHING IS PERSISTED"), "{output}");
    // The JSON and form samples are one room_close: the second is a duplicate, not republished.
    assert_eq!(output.matches("event published").count(), 1, "{output}");
    assert!(
        output.contains(r#"\"type\":\"room.closed\""#)
            || output.contains(r#""type":"room.closed""#),
        "{output}"
    );
}

/// The README's first steps, in the order a newcomer takes them: `send` in a second terminal
/// while the bridge in the first is still starting. It reported "no answer" for every sample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_waits_for_a_bridge_that_is_starting_and_says_so_when_none_comes() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v1/callbacks");
    let send = bridge_command()
        .args([
            "send",
            "--sample",
            "room_close",
            "--url",
            &url,
            "--wait",
            "30",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut bridge = bridge_command()
        .env("ZEGO_BRIDGE_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("ZEGO_BRIDGE_ADMIN_ADDR", "127.0.0.1:0")
        .env("ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sent = send.wait_with_output().unwrap();
    signal(bridge.id(), "TERM");
    bridge.wait().unwrap();
    let stdout = String::from_utf8_lossy(&sent.stdout);
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert!(sent.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("2 of 2 callbacks accepted"), "{stdout}");
    assert!(stderr.contains("waiting up to 30 s"), "{stderr}");

    // Nobody comes: one line that says what to do, not a failure per sample.
    let alone = bridge_command()
        .args(["send", "--url", &url, "--wait", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert_eq!(alone.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("nothing listens on 127.0.0.1:{port} after 1 s"))
            && stderr.contains("start the bridge first"),
        "{stderr}"
    );
    assert!(
        alone.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&alone.stdout)
    );
}

/// Letters an outage left in the dead-letter file are acknowledged events not in Kafka: a pod
/// stopped with them (its file on an emptyDir) once exited 0 with "every accepted event was
/// delivered or is in the dead-letter file", and nothing else said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_dead_letters_waiting_reports_them_everywhere() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let dead = scratch_file("waiting.jsonl");
    let letter = r#"{"failed_at":"2026-12-01T00:00:00.000Z","error":"Message timed out","topic":"t","key":null,"headers":{},"event":{"seq":1}}"#;
    std::fs::write(&dead, format!("{letter}\n{letter}\n")).unwrap();
    let termination = scratch_file("termination-log");
    let bridge = BridgeProcess::start(&[
        ("ZEGO_BRIDGE_KAFKA_BROKERS", &brokers()),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", &prefix),
        ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s"),
        ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
        // The retrier would send them: not within this test.
        ("ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS", "600000"),
        ("ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS", "30000"),
        (
            "ZEGO_BRIDGE_TERMINATION_MESSAGE_PATH",
            termination.to_str().unwrap(),
        ),
    ])
    .await;
    let scraped = bridge.terminate_and_scrape_undelivered().await;
    assert_eq!(scraped, "zego_bridge_undelivered_at_shutdown 2");
    let (code, output) = bridge.wait();
    assert_eq!(code, Some(3), "{output}");
    let message = std::fs::read_to_string(&termination).unwrap();
    assert!(
        message.starts_with("stopped with 2 accepted events not in Kafka: dead letters waiting"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_delivers_everything_accepted_and_logs_json() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let brokers = brokers();
    let running = BridgeProcess::start(&[
        ("ZEGO_BRIDGE_KAFKA_BROKERS", brokers.as_str()),
        ("ZEGO_BRIDGE_CALLBACK_SECRETS", SECRET),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix.as_str()),
        ("ZEGO_BRIDGE_LOG_FORMAT", "json"),
    ])
    .await;
    let client = reqwest::Client::new();
    let mut accepted = 0;
    for seq in 0..100 {
        let body = format!(
            r#"{{"event":"mix_start","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"{seq}"}}"#
        );
        let nonce = sender::random_nonce();
        let signed = sender::sign_callback(
            &body,
            &Signing {
                nonce: &nonce,
                ..Signing::now(SECRET)
            },
        )
        .unwrap();
        let response = client
            .post(&running.callbacks_url)
            .header("content-type", signed.content_type)
            .body(signed.body)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 100);
    let (code, output) = running.terminate();
    assert_eq!(code, Some(0), "{output}");
    for line in output.lines().filter(|line| !line.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(
            parsed["level"].is_string() && parsed["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(!output.contains(SECRET), "a secret was logged");
    let records = consume(
        &format!("{prefix}.mix.started"),
        100,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(records.len(), 100, "every accepted callback is in Kafka");
}

#[test]
fn topics_lists_every_topic_with_its_overrides() {
    let output = bridge_command()
        .args(["topics"])
        .env("ZEGO_BRIDGE_TOPIC_PREFIX", "acme")
        .env("ZEGO_BRIDGE_TOPIC_ROOM_CLOSED", "rooms-closed")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let listed: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        listed.len(),
        zego_kafka_bridge::event::catalog::ALL.len() + 1,
        "every type's, and where the replicas share used signatures: {listed:?}"
    );
    assert!(listed.contains(&"rooms-closed".to_owned()), "{listed:?}");
    assert!(
        listed.contains(&"acme.bridge.used_signatures".to_owned()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"acme.room.created".to_owned()),
        "{listed:?}"
    );
    assert!(
        !listed.contains(&"acme.room.closed".to_owned()),
        "{listed:?}"
    );

    // A bridge for some products lists (and creates) their topics only.
    let output = bridge_command()
        .args(["topics"])
        .env("ZEGO_BRIDGE_TOPIC_PREFIX", "acme")
        .env("ZEGO_BRIDGE_PRODUCTS", "zim,asr")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let listed = String::from_utf8(output.stdout).unwrap();
    let expected = zego_kafka_bridge::event::catalog::ALL
        .iter()
        .filter(|kind| matches!(kind.product, Product::Zim | Product::Asr))
        .count();
    assert_eq!(listed.lines().count(), expected + 1, "{listed}");
    assert!(
        listed.lines().all(|topic| topic.starts_with("acme.zim.")
            || topic.starts_with("acme.asr.")
            || topic == "acme.bridge.used_signatures"),
        "{listed}"
    );
    let refused = bridge_command()
        .args(["topics"])
        .env("ZEGO_BRIDGE_PRODUCTS", "rtc,chat")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("ZEGO_BRIDGE_PRODUCTS") && stderr.contains("\"chat\""),
        "{stderr}"
    );

    let refused = bridge_command()
        .args(["topics"])
        .env("ZEGO_BRIDGE_TOPIC_ROOM_CLOSD", "x")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ZEGO_BRIDGE_TOPIC_ROOM_CLOSD"));
}

/// The compose file's one-shot job: creates what is missing, and running it again is harmless.
#[tokio::test]
async fn topics_create_makes_every_topic_the_bridge_publishes_to() {
    let prefix = unique_prefix();
    let create = || {
        bridge_command()
            .args([
                "topics",
                "--create",
                "--partitions",
                "2",
                "--replication-factor",
                "1",
            ])
            .env("ZEGO_BRIDGE_KAFKA_BROKERS", brokers())
            .env("ZEGO_BRIDGE_TOPIC_PREFIX", &prefix)
            .output()
            .unwrap()
    };
    let first = create();
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.ends_with(": created"))
            .count(),
        zego_kafka_bridge::event::catalog::ALL.len() + 1,
        "{stdout}"
    );
    let again = create();
    let stdout = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{stdout}");
    assert!(
        stdout.lines().all(|line| line.ends_with(": exists")),
        "{stdout}"
    );

    // A bridge on that prefix finds nothing missing, so it is ready and publishes.
    let secret = "topics-secret";
    let running = BridgeProcess::start(&[
        ("ZEGO_BRIDGE_KAFKA_BROKERS", &brokers()),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", &prefix),
        ("ZEGO_BRIDGE_CALLBACK_SECRETS", secret),
    ])
    .await;
    let metrics = reqwest::get(format!("{}/metrics", running.admin_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.lines().any(
            |line| line.starts_with("zego_bridge_kafka_topic_missing{") && line.ends_with(" 1")
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nzego_bridge_used_signatures_shared 1\n"),
        "the replicas share their used signatures through the topic it made: {metrics}"
    );
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn healthcheck_follows_readiness() {
    let running = BridgeProcess::start(&[]).await;
    let ready = bridge_command()
        .args([
            "healthcheck",
            "--url",
            &format!("{}/readyz", running.admin_url),
        ])
        .output()
        .unwrap();
    assert!(ready.status.success(), "{ready:?}");
    let admin_url = running.admin_url.clone();
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
    let gone = bridge_command()
        .args(["healthcheck", "--url", &format!("{admin_url}/readyz")])
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(!gone.stderr.is_empty());
}

/// Posts a fresh `mix_start` signed with `secret` and returns the status.
async fn post_mix_start(client: &reqwest::Client, url: &str, secret: &str) -> u16 {
    let body = format!(
        r#"{{"event":"mix_start","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"{}"}}"#,
        rand::random::<u32>()
    );
    crate::helpers::post_signed_with(client, url, &body, secret).await
}

/// Replaces the file as the kubelet updates a Secret volume: the new content in a new
/// directory, then the `..data` symbolic link swapped atomically; the file itself is a link
/// through `..data`.
fn kubelet_swap(volume: &std::path::Path, content: &str) {
    let version = volume.join(format!("..{}", rand::random::<u64>()));
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("callback-secrets"), content).unwrap();
    let staged = volume.join("..data_tmp");
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(version.file_name().unwrap(), &staged).unwrap();
    std::fs::rename(&staged, volume.join("..data")).unwrap();
    let file = volume.join("callback-secrets");
    if std::fs::symlink_metadata(&file).is_err() {
        std::os::unix::fs::symlink("..data/callback-secrets", &file).unwrap();
    }
}

/// Waits until a callback signed with `secret` gets `status`.
async fn until_status(client: &reqwest::Client, url: &str, secret: &str, status: u16) {
    let started = std::time::Instant::now();
    while post_mix_start(client, url, secret).await != status {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a callback signed with {secret} never got {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Secret rotated in Kubernetes reaches the running bridge: the new secret is accepted and the
/// old one refused within seconds, without a restart; a broken file keeps the secrets in use and
/// says so in a log line and a metric, never showing a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_secrets_rotate_from_a_kubernetes_secret_volume_without_a_restart() {
    let volume = scratch_file("secret-volume");
    std::fs::create_dir_all(&volume).unwrap();
    kubelet_swap(&volume, "first-secret-0001\n");
    let file = volume.join("callback-secrets");
    let file_text = file.to_str().unwrap().to_owned();
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let brokers = brokers();
    let running = BridgeProcess::start(&[
        ("ZEGO_BRIDGE_KAFKA_BROKERS", brokers.as_str()),
        ("ZEGO_BRIDGE_CALLBACK_SECRETS_FILE", file_text.as_str()),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix.as_str()),
    ])
    .await;
    let client = reqwest::Client::new();
    let url = running.callbacks_url.clone();
    assert_eq!(
        post_mix_start(&client, &url, "first-secret-0001").await,
        200
    );
    assert_eq!(
        post_mix_start(&client, &url, "second-secret-0002").await,
        401
    );

    // A rotation: both for a while (as ZEGO's console switches over), then the new one alone.
    kubelet_swap(
        &volume,
        "# rotation\nfirst-secret-0001\nsecond-secret-0002\n",
    );
    until_status(&client, &url, "second-secret-0002", 200).await;
    assert_eq!(
        post_mix_start(&client, &url, "first-secret-0001").await,
        200
    );
    kubelet_swap(&volume, "second-secret-0002\n");
    until_status(&client, &url, "first-secret-0001", 401).await;

    // A broken file: the secrets in use stay; the metric and the log say so.
    kubelet_swap(&volume, "4242=\n");
    let metrics_url = format!("{}/metrics", running.admin_url);
    let started = std::time::Instant::now();
    loop {
        let metrics = client
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics
            .lines()
            .any(|line| line == "zego_bridge_callback_secrets_file_invalid 1")
        {
            assert!(
                metrics
                    .contains(r#"zego_bridge_callback_secrets_reloads_total{outcome="failed"} 1"#)
                    && metrics.contains(
                        r#"zego_bridge_callback_secrets_reloads_total{outcome="applied"} 2"#
                    ),
                "{metrics}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        post_mix_start(&client, &url, "second-secret-0002").await,
        200
    );

    let (code, output) = running.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        output.matches("callback secrets reloaded").count(),
        2,
        "{output}"
    );
    assert!(
        output.contains("the callback secrets file cannot be used"),
        "{output}"
    );
    assert!(
        !output.contains("secret-000"),
        "a secret was logged: {output}"
    );
}

/// A request the HTTP stack refuses before any route sees it is logged like any other refusal:
/// the client, and the request id its reply carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_stacks_refusals_are_logged_with_their_request_id() {
    let running = BridgeProcess::start(&[("ZEGO_BRIDGE_LOG_FORMAT", "json")]).await;
    let reply = raw_exchange(
        &running.address(),
        b"POST /v1/callbacks HTTP/1.1\r\nHost: bridge\r\nContent-Length: 1x\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    let request_id = reply
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no request id: {reply}"))
        .to_owned();
    let (code, output) = running.terminate();
    assert_eq!(code, Some(0), "{output}");
    let line = output
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no line for {request_id}: {output}"));
    assert_eq!(line["message"], "bad callback request", "{line}");
    assert_eq!(line["client"], "127.0.0.1", "{line}");
    assert_eq!(line["type"], "none", "{line}");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("could not be parsed"),
        "{line}"
    );
}

/// What an SRE debugging from the logs gets: request ids taken or made and returned, the client
/// behind a trusted proxy (and only behind one), an access line per request, the published
/// payload as a JSON object; and a flood of forged callbacks that is counted in full but
/// logged at a bounded rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_name_the_client_and_request_and_a_flood_of_refusals_is_sampled() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let brokers = brokers();
    let running = BridgeProcess::start(&[
        ("ZEGO_BRIDGE_KAFKA_BROKERS", brokers.as_str()),
        ("ZEGO_BRIDGE_CALLBACK_SECRETS", SECRET),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix.as_str()),
        ("ZEGO_BRIDGE_LOG_FORMAT", "json"),
        ("ZEGO_BRIDGE_LOG_EVENTS", "true"),
        ("ZEGO_BRIDGE_ACCESS_LOG", "true"),
        ("ZEGO_BRIDGE_HTTP_TRUSTED_PROXIES", "127.0.0.0/8"),
    ])
    .await;
    let client = reqwest::Client::new();
    let url = running.callbacks_url.clone();
    let body = r#"{"event":"room_close","appid":77,"timestamp":1,"nonce":"n","signature":"s","room_id":"lobby","room_session_id":9}"#;
    let nonce = sender::random_nonce();
    let signed = sender::sign_callback(
        body,
        &Signing {
            nonce: &nonce,
            ..Signing::now(SECRET)
        },
    )
    .unwrap();
    let accepted = client
        .post(&url)
        .header("content-type", signed.content_type)
        .header("x-request-id", "ingress-req-1")
        // The client wrote the left entry itself; the trusted proxy (loopback) appended the
        // address it saw.
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
        .body(signed.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(accepted.headers()["x-request-id"], "ingress-req-1");

    // A flood of forged callbacks, as fast as one connection goes.
    let flood = 1500;
    let started = std::time::Instant::now();
    for _ in 0..flood {
        let forged = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.replace(r#""nonce":"n""#, r#""nonce":"1""#).replace(
                r#""signature":"s""#,
                r#""signature":"00112233445566778899aabbccddeeff00112233""#,
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);
        // A request id was made for it.
        assert_eq!(forged.headers()["x-request-id"].len(), 36);
    }
    let flood_secs = started.elapsed().as_secs_f64();
    // A second later the sampler logs again and says how many it held back.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let late = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 401);
    let metrics = client
        .get(format!("{}/metrics", running.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (code, output) = running.terminate();
    assert_eq!(code, Some(0), "{output}");

    let lines: Vec<serde_json::Value> = output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let with_message = |message: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|line| line["message"] == message)
            .collect()
    };
    // The access line of the accepted callback names the real client, not the forged hop.
    let access = with_message("callback request");
    assert_eq!(access.len(), flood + 2, "one access line per request");
    let first = access
        .iter()
        .find(|line| line["request_id"] == "ingress-req-1")
        .expect("the accepted request's access line");
    assert_eq!(first["client"], "198.51.100.7");
    assert_eq!(first["status"], 200);
    assert_eq!(first["type"], "room.closed");
    assert_eq!(first["app_id"], 77);
    assert_eq!(first["target"], "zego_kafka_bridge::access");
    // The published event is an object in the log, not an escaped string.
    let published = with_message("event published");
    assert_eq!(published.len(), 1, "{output}");
    assert_eq!(published[0]["payload"]["room_id"], "lobby", "{output}");

    // Refusals: every one counted, a bounded number logged, each naming app, client, request.
    assert!(
        metrics.contains(&format!(
            r#"zego_bridge_signature_refusals_total{{reason="mismatch"}} {}"#,
            flood + 1
        )),
        "{metrics}"
    );
    let refused = with_message("callback refused");
    let bound = 100 + (20.0 * (flood_secs + 2.0)).ceil() as usize;
    assert!(
        refused.len() <= bound,
        "{} refusal lines for {flood} refusals in {flood_secs:.1} s (bound {bound})",
        refused.len()
    );
    for line in &refused {
        assert_eq!(line["app_id"], 77);
        assert_eq!(
            line["client"], "127.0.0.1",
            "the forged header is not believed: {line}"
        );
        assert_eq!(line["request_id"].as_str().unwrap().len(), 36);
    }
    let not_logged: u64 = refused
        .iter()
        .filter_map(|line| line["not_logged"].as_u64())
        .sum();
    assert!(not_logged > 0, "the sampler held nothing back");
    assert_eq!(
        not_logged as usize + refused.len(),
        flood + 1,
        "the lines account for every refusal"
    );
    assert!(!output.contains(SECRET));
}
