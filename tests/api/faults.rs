//! Faults injected with librdkafka's mock cluster (the fuller set comes with the reliability work).

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use zego_kafka_bridge::event::catalog;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failure_after_the_ack_is_counted() {
    // The mock cluster is not `Send`; it lives on the test's own stack, which is fine here.
    let cluster = MockCluster::new(1).expect("mock cluster");
    let prefix = unique_prefix();
    for kind in catalog::ALL {
        cluster
            .create_topic(&format!("{prefix}.{}", kind.name), 1, 1)
            .expect("mock topic");
    }
    let app = spawn_app_on(&prefix, &cluster.bootstrap_servers(), &[]).await;
    // A non-retriable error: the produce request fails for good.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let body = r#"{"event":"mix_stop","appid":"1","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"1"}"#;
    assert_eq!(
        app.post_signed(body).await.status,
        200,
        "the ack comes before Kafka's answer"
    );
    let failed = format!(
        r#"zego_bridge_kafka_deliveries_total{{outcome="failed",topic="{prefix}.mix.stopped"}} 1"#
    );
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = app.metrics().await;
        if metrics.contains(&failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(&failed), "{metrics}");
    // librdkafka now knows the topic refuses writes: the next callback is either refused
    // with 503 (nothing acknowledged) or, once that clears, accepted and delivered. Never a
    // 200 that silently goes nowhere.
    let answer = app.post_signed(body).await;
    assert!(matches!(answer.status, 200 | 503), "{:?}", answer.body);
    if answer.status == 200 {
        let delivered = format!(
            r#"zego_bridge_kafka_deliveries_total{{outcome="delivered",topic="{prefix}.mix.stopped"}} 1"#
        );
        for _ in 0..100 {
            metrics = app.metrics().await;
            if metrics.contains(&delivered) || metrics.contains(&failed.replace("} 1", "} 2")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            metrics.contains(&delivered) || metrics.contains(&failed.replace("} 1", "} 2")),
            "{metrics}"
        );
    } else {
        assert_eq!(answer.retry_after.as_deref(), Some("2"));
    }
    assert_eq!(app.stop().await.undelivered, 0);
}
