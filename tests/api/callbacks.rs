//! Signed callbacks in, normalized events out: every sample, read back from Kafka.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value as Json;
use zego_kafka_bridge::event::catalog;
use zego_kafka_bridge::samples;
use zego_kafka_bridge::zego::Product;

use crate::helpers::*;

/// The vendor samples carry a placeholder `Timestamp` ("timestamp"); signing replaces it.
fn expected_type(event: &str) -> &'static str {
    match event {
        "cloud_recording_status" => "cloud_recording.status",
        other => catalog::for_zego_event(other).name,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_lands_on_its_topic_with_key_headers_and_a_valid_value() {
    // A sample's JSON and form versions are one occurrence (same id): with deduplication on,
    // the second would be answered 200 without a second publish. Off here, to see them all.
    let app = spawn_app_with(&[("ZEGO_BRIDGE_DEDUP_CAPACITY", "0")]).await;
    let mut expected: HashMap<&'static str, usize> = HashMap::new();
    // The other products' samples, on their own paths, are in `products.rs`.
    for sample in samples::callbacks().filter(|sample| sample.product == Product::Rtc) {
        let answer = app.post_signed(sample.body).await;
        assert_eq!(answer.status, 200, "{}: {:?}", sample.file, answer.body);
        // The recording callback is answered `1`, as its older page asks; the others in JSON.
        if sample.event() != "record" {
            assert_eq!(answer.body["code"], 200, "{}", sample.file);
        }
        *expected.entry(expected_type(sample.event())).or_default() += 1;
    }
    let rtc_types = catalog::ALL
        .iter()
        .filter(|kind| matches!(kind.product, Product::Rtc | Product::CloudRecording))
        .count();
    assert_eq!(
        expected.len(),
        rtc_types - 2,
        "every RTC type but unrecognized and the legacy end-of-recording callback (the vendor \
         printed none) has a sample"
    );

    for (kind, count) in expected {
        let records = consume(&app.topic(kind), count, Duration::from_secs(10)).await;
        assert_eq!(records.len(), count, "{kind}: expected {count} records");
        for record in records {
            let value = &record.value;
            assert_eq!(value["type"], kind);
            assert_matches_schema(value);
            // Key: the room, else the task, else the stream.
            let expected_key = ["room_id", "task_id", "stream_id"]
                .iter()
                .find_map(|field| value[*field].as_str().filter(|text| !text.is_empty()))
                .map(str::to_owned);
            assert_eq!(record.key, expected_key, "{kind}");
            // CloudEvents binary mode.
            let headers = &record.headers;
            assert_eq!(headers["ce_specversion"], "1.0");
            assert_eq!(headers["ce_id"], value["id"].as_str().unwrap());
            assert_eq!(
                headers["ce_source"],
                format!("zegocloud://apps/{}", value["app_id"])
            );
            assert_eq!(headers["ce_type"], format!("com.zegocloud.{kind}"));
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(
                headers["ce_dataschema"],
                format!("urn:zego-kafka-bridge:event:{kind}:v1")
            );
            assert_eq!(headers.get("ce_subject"), record.key.as_ref(), "{kind}");
            let time = chrono::DateTime::parse_from_rfc3339(&headers["ce_time"]).expect("RFC 3339");
            let expected_ms = value["occurred_at_ms"]
                .as_i64()
                .unwrap_or_else(|| value["sent_at"].as_i64().unwrap() * 1000);
            assert_eq!(time.timestamp_millis(), expected_ms, "{kind}");
        }
    }
    assert_eq!(app.stop().await.undelivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_is_published_with_its_exact_values() {
    let app = spawn_app().await;
    let body = r#"{"event":"room_close","appid":1,"timestamp":1,"nonce":"n","signature":"s",
        "room_id":"rid_1242649","room_session_id":18446744073709551615,"close_reason":2,
        "room_close_time":"1499676989909","brand_new_key":{"nested":[1,"two"]}}"#;
    assert_eq!(app.post_signed(body).await.status, 200);
    let records = consume(&app.topic("room.closed"), 1, Duration::from_secs(10)).await;
    let value = &records[0].value;
    assert_eq!(value["zego_event"], "room_close");
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["app_id"], 1);
    assert_eq!(value["room_session_id"], "18446744073709551615");
    assert_eq!(value["close_reason_code"], 2);
    assert_eq!(value["close_reason"], "last_member_offline");
    assert_eq!(value["closed_at_ms"], 1499676989909i64);
    assert_eq!(value["occurred_at_ms"], 1499676989909i64);
    assert_eq!(
        value["extra"],
        serde_json::json!({"brand_new_key": {"nested": [1, "two"]}})
    );
    let received = value["received_at_ms"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (now - received).abs() < 60_000,
        "received_at_ms {received} is not now"
    );
    assert_eq!(records[0].key.as_deref(), Some("rid_1242649"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_callback_gets_the_same_id() {
    // With deduplication off every delivery is published, so the ids can be compared.
    let app = spawn_app_with(&[("ZEGO_BRIDGE_DEDUP_CAPACITY", "0")]).await;
    let sample = samples::ALL
        .iter()
        .find(|sample| sample.file == "room_login.json")
        .unwrap();
    // Two deliveries of one callback, each signed with its own nonce and time, as ZEGO may do.
    let first = sign(sample.body, SECRET);
    let second = sign(sample.body, SECRET);
    assert_ne!(first.body, second.body);
    assert_eq!(app.post(&first).await.status, 200);
    assert_eq!(app.post(&second).await.status, 200);
    // And a second delivery byte-for-byte the same.
    assert_eq!(app.post(&first).await.status, 200);
    let records = consume(&app.topic("user.logged_in"), 3, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 3);
    let ids: Vec<&Json> = records.iter().map(|record| &record.value["id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_goes_to_the_unrecognized_topic_with_its_fields() {
    let app = spawn_app().await;
    let body = r#"{"event":"room_user_count","appid":"5","timestamp":"1","nonce":"1","signature":"s",
        "room_id":"r-7","user_count":12,"admin_user_count":1}"#;
    let answer = app.post_signed(body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let records = consume(&app.topic("unrecognized"), 1, Duration::from_secs(10)).await;
    let value = &records[0].value;
    assert_matches_schema(value);
    assert_eq!(value["zego_event"], "room_user_count");
    assert_eq!(value["extra"]["user_count"], 12);
    assert_eq!(records[0].key.as_deref(), Some("r-7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_room_keeps_one_partition_across_event_types() {
    let app = spawn_app().await;
    let room = "room-ordering-check";
    let bodies = [
        format!(
            r#"{{"event":"room_create","appid":1,"timestamp":1,"nonce":"n","signature":"s","room_id":"{room}","room_session_id":5}}"#
        ),
        format!(
            r#"{{"event":"room_login","appid":"1","timestamp":"1","nonce":"n","signature":"s","room_id":"{room}","user_account":"u"}}"#
        ),
        format!(
            r#"{{"event":"room_close","appid":1,"timestamp":1,"nonce":"n","signature":"s","room_id":"{room}","room_session_id":5}}"#
        ),
    ];
    for body in &bodies {
        assert_eq!(app.post_signed(body).await.status, 200);
    }
    let mut partitions = Vec::new();
    for kind in ["room.created", "user.logged_in", "room.closed"] {
        let records = consume(&app.topic(kind), 1, Duration::from_secs(10)).await;
        assert_eq!(records[0].key.as_deref(), Some(room));
        partitions.push(records[0].partition);
    }
    assert!(
        partitions
            .iter()
            .all(|partition| *partition == partitions[0]),
        "{partitions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_specific_secret_is_valid_for_its_app_only() {
    let app = spawn_app().await;
    // Distinct seqs: the same callback twice would be a duplicate, published once.
    let body = |app_id: u32, seq: u32| {
        format!(
            r#"{{"event":"mix_stop","appid":"{app_id}","timestamp":"1","nonce":"1","signature":"s","task_id":"t","seq":"{seq}"}}"#
        )
    };
    assert_eq!(
        app.post(&sign(&body(4242, 1), APP_SECRET)).await.status,
        200
    );
    assert_eq!(
        app.post(&sign(&body(4242, 2), SECRET)).await.status,
        200,
        "the shared secret is valid for every app"
    );
    let refused = app.post(&sign(&body(1, 3), APP_SECRET)).await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    let records = consume(&app.topic("mix.stopped"), 3, Duration::from_secs(5)).await;
    assert_eq!(records.len(), 2);
}
