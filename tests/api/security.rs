//! The bridge against Apache Kafka with SASL/SCRAM-SHA-512 (over plaintext and over TLS) and with
//! TLS alone, under a CA made at test time, configured only through `ZEGO_BRIDGE_LIBRDKAFKA_*`.
//! Wrong credentials and an untrusted certificate give not-ready, one clear log line and 503s:
//! never a hang, never a 200.

use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::kafka_cluster::KafkaCluster;

struct Listener {
    name: &'static str,
    bootstrap: String,
    vars: Vec<(&'static str, String)>,
}

fn listeners(cluster: &KafkaCluster) -> Vec<Listener> {
    let summary = &cluster.summary;
    let text = |key: &str| summary[key].as_str().unwrap().to_owned();
    let ca = text("ca");
    let scram = |protocol: &str| {
        vec![
            (
                "ZEGO_BRIDGE_LIBRDKAFKA_SECURITY_PROTOCOL",
                protocol.to_owned(),
            ),
            (
                "ZEGO_BRIDGE_LIBRDKAFKA_SASL_MECHANISMS",
                "SCRAM-SHA-512".to_owned(),
            ),
            (
                "ZEGO_BRIDGE_LIBRDKAFKA_SASL_USERNAME",
                summary["scram"]["username"].as_str().unwrap().to_owned(),
            ),
            (
                "ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD",
                summary["scram"]["password"].as_str().unwrap().to_owned(),
            ),
        ]
    };
    let mut sasl_ssl = scram("SASL_SSL");
    sasl_ssl.push(("ZEGO_BRIDGE_LIBRDKAFKA_SSL_CA_LOCATION", ca.clone()));
    vec![
        Listener {
            name: "SASL_PLAINTEXT",
            bootstrap: text("sasl_plaintext"),
            vars: scram("SASL_PLAINTEXT"),
        },
        Listener {
            name: "SASL_SSL",
            bootstrap: text("sasl_ssl"),
            vars: sasl_ssl,
        },
        Listener {
            name: "SSL",
            bootstrap: text("ssl"),
            vars: vec![
                ("ZEGO_BRIDGE_LIBRDKAFKA_SECURITY_PROTOCOL", "SSL".to_owned()),
                ("ZEGO_BRIDGE_LIBRDKAFKA_SSL_CA_LOCATION", ca),
            ],
        },
    ]
}

async fn process_on(listener: &Listener, prefix: &str, changes: &[(&str, &str)]) -> BridgeProcess {
    let mut vars: Vec<(&str, String)> = vec![
        ("ZEGO_BRIDGE_KAFKA_BROKERS", listener.bootstrap.clone()),
        ("ZEGO_BRIDGE_CALLBACK_SECRETS", SECRET.to_owned()),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix.to_owned()),
        ("ZEGO_BRIDGE_LOG_FORMAT", "json".to_owned()),
    ];
    for (name, value) in &listener.vars {
        let value = changes
            .iter()
            .find(|(changed, _)| changed == name)
            .map_or(value.clone(), |(_, value)| (*value).to_owned());
        vars.push((name, value));
    }
    vars.retain(|(name, _)| {
        !changes
            .iter()
            .any(|(changed, value)| changed == name && value.is_empty())
    });
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    BridgeProcess::start_unready(&borrowed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_and_tls_against_apache_kafka() {
    let cluster = KafkaCluster::start(1, true).await;
    let prefix = unique_prefix();
    create_topics_on(&cluster.bootstrap, &prefix).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for (n, listener) in listeners(&cluster).iter().enumerate() {
        // The right settings: published, read back through the plaintext listener.
        let bridge = process_on(listener, &prefix, &[]).await;
        bridge.wait_ready(Duration::from_secs(20)).await;
        let status = post_signed_to(&client, &bridge.callbacks_url, &mix_start(n)).await;
        assert_eq!(status, 200, "{}", listener.name);
        let (code, output) = bridge.terminate();
        assert_eq!(code, Some(0), "{}: {output}", listener.name);
        assert!(
            !output.contains("bridge-secret"),
            "{}: the SASL password was logged",
            listener.name
        );
    }
    let records = consume_until(
        &cluster.bootstrap,
        &format!("{prefix}.mix.started"),
        Duration::from_secs(10),
        |records| records.len() >= 3,
    )
    .await;
    assert_eq!(seqs(&records), (0..3).collect());

    // Wrong settings: not ready, one clear line, 503 and never 200, never a hang.
    let all = listeners(&cluster);
    type Case<'a> = (&'a Listener, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &all[0],
            &[("ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD", "wrong-password")],
            "wrong password over SASL_PLAINTEXT",
        ),
        (
            &all[1],
            &[("ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD", "wrong-password")],
            "wrong password over SASL_SSL",
        ),
        (
            &all[2],
            &[("ZEGO_BRIDGE_LIBRDKAFKA_SSL_CA_LOCATION", "")],
            "a certificate from a CA the bridge does not trust",
        ),
    ];
    for (listener, changes, case) in cases {
        let bridge = process_on(listener, &prefix, changes).await;
        let started = Instant::now();
        let mut statuses = Vec::new();
        while started.elapsed() < Duration::from_secs(6) {
            let answered = Instant::now();
            let status = post_signed_to(&client, &bridge.callbacks_url, &mix_start(100)).await;
            assert!(
                answered.elapsed() < Duration::from_secs(5),
                "{case}: a request hung"
            );
            statuses.push(status);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ready = client
            .get(format!("{}/readyz", bridge.admin_url))
            .send()
            .await
            .unwrap();
        let ready_status = ready.status().as_u16();
        let ready_body = ready.text().await.unwrap();
        let (_, output) = bridge.terminate();
        assert!(
            !statuses.contains(&200),
            "{case}: a callback was acknowledged: {statuses:?}"
        );
        assert!(statuses.contains(&503), "{case}: {statuses:?}");
        assert_eq!(ready_status, 503, "{case}: {ready_body}");
        let refusals = output
            .lines()
            .filter(|line| {
                line.contains(r#""message":"Kafka refuses the bridge's connection (check"#)
            })
            .count();
        assert_eq!(refusals, 1, "{case}: one clear log line\n{output}");
        assert!(
            !output.contains("wrong-password"),
            "{case}: the password was logged"
        );
    }
}
