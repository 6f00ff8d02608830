//! The products after RTC, end to end against the broker: each product's samples posted signed
//! to its own path, read back from its own topics; the names two products share; ZIM's
//! synchronous pre-send check while Kafka is away.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use zego_kafka_bridge::event::catalog::{self, KeyRule};
use zego_kafka_bridge::samples;
use zego_kafka_bridge::zego::Product;

use crate::helpers::*;

/// The key the catalog promises for this event, worked out from the published value.
fn expected_key(value: &Json, original: &Json) -> Option<String> {
    let kind = catalog::by_name(value["type"].as_str().unwrap()).unwrap();
    let text = |name: &str| value[name].as_str().filter(|text| !text.is_empty());
    match kind.key {
        KeyRule::FirstOf(names) => names.iter().find_map(|name| text(name)).map(str::to_owned),
        KeyRule::Conversation => {
            let conv_type = value["conv_type_code"].as_i64();
            match (conv_type, text("conv_id"), text("from_user_id")) {
                (Some(0), Some(peer), Some(from)) => {
                    let mut users = [peer, from];
                    users.sort_unstable();
                    Some(format!("0:{}:{}", users[0], users[1]))
                }
                (Some(0), None, Some(from)) => Some(format!("0:{from}")),
                (Some(conv_type), Some(conv_id), _) => Some(format!("{conv_type}:{conv_id}")),
                (None, Some(conv_id), _) => Some(conv_id.to_owned()),
                (_, None, from) => from.map(str::to_owned),
            }
        }
        KeyRule::Body(paths) => paths.iter().find_map(|path| {
            let mut node = original;
            for key in *path {
                let object = node.as_object()?;
                node = object
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(key))?
                    .1;
            }
            match node {
                Json::String(text) if !text.is_empty() => Some(text.clone()),
                Json::Number(number) => Some(number.to_string()),
                _ => None,
            }
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_product_sample_lands_on_its_topic_with_key_headers_and_a_valid_value() {
    let app = spawn_products_app_with(&[("ZEGO_BRIDGE_DEDUP_CAPACITY", "0")]).await;
    let mut expected: HashMap<&'static str, Vec<Json>> = HashMap::new();
    let posted_at = chrono::Utc::now().timestamp_millis();
    for sample in samples::callbacks().filter(|sample| sample.product != Product::Rtc) {
        let answer = app.post_signed_to(sample.product, sample.body).await;
        assert_eq!(answer.status, 200, "{}: {:?}", sample.file, answer.body);
        let kind = catalog::resolve(sample.product, sample.event()).0;
        if kind.name == "zim.message.before_send" {
            assert_eq!(answer.body, json!({"result": 0}), "no opinion by default");
        } else {
            assert_eq!(answer.body["code"], 200, "{}", sample.file);
        }
        expected
            .entry(kind.name)
            .or_default()
            .push(serde_json::from_str(sample.body).unwrap());
    }
    let products: std::collections::BTreeSet<&str> = expected
        .keys()
        .map(|name| name.split('.').next().unwrap())
        .collect();
    assert_eq!(
        products.into_iter().collect::<Vec<_>>(),
        [
            "ai_agent",
            "asr",
            "cloud_player",
            "digital_human",
            "super_board",
            "zim"
        ]
    );

    for (kind, originals) in expected {
        let records = consume(&app.topic(kind), originals.len(), Duration::from_secs(15)).await;
        assert_eq!(records.len(), originals.len(), "{kind}");
        for record in records {
            let value = &record.value;
            assert_eq!(value["type"], kind);
            assert_matches_schema(value);
            // The key is the one the catalog's rule gives for one of the samples posted.
            assert!(
                originals
                    .iter()
                    .any(|original| expected_key(value, original) == record.key),
                "{kind}: key {:?} of no sample\n{value:#}",
                record.key
            );
            assert!(
                record.key.is_some(),
                "{kind}: every event of these samples has a key"
            );
            // Whatever the unit it was sent in, `sent_at_ms` is now and `sent_at` its seconds.
            let sent_at_ms = value["sent_at_ms"].as_i64().unwrap();
            assert!(
                (sent_at_ms - posted_at).abs() < 60_000,
                "{kind}: sent_at_ms {sent_at_ms}, posted at {posted_at}"
            );
            assert_eq!(
                value["sent_at"].as_i64().unwrap(),
                sent_at_ms.div_euclid(1000)
            );
            let headers = &record.headers;
            assert_eq!(headers["ce_specversion"], "1.0");
            assert_eq!(headers["ce_id"], value["id"].as_str().unwrap());
            assert_eq!(headers["ce_type"], format!("com.zegocloud.{kind}"));
            assert_eq!(headers.get("ce_subject"), record.key.as_ref(), "{kind}");
            assert_eq!(
                headers["ce_dataschema"],
                format!("urn:zego-kafka-bridge:event:{kind}:v1")
            );
            assert_eq!(
                headers["ce_source"],
                format!("zegocloud://apps/{}", value["app_id"])
            );
            let time = chrono::DateTime::parse_from_rfc3339(&headers["ce_time"]).unwrap();
            let expected_ms = value["occurred_at_ms"].as_i64().unwrap_or(sent_at_ms);
            assert_eq!(time.timestamp_millis(), expected_ms, "{kind}");
        }
    }
    assert_eq!(app.stop().await.undelivered, 0);
}

/// AI Agent and ASR sign a 13-digit millisecond `Timestamp`: it is verified as sent, and the
/// clock-skew check reads it as milliseconds (so an old one is refused, a current one taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millisecond_timestamps_are_signed_as_sent_and_checked_in_their_unit() {
    let app = spawn_products_app_with(&[]).await;
    let body = samples::ALL
        .iter()
        .find(|sample| sample.file == "products/realtime_asr.ASRResult.json")
        .unwrap()
        .body;
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (timestamp, status) in [(now_ms, 200), (now_ms - 3_600_000, 401)] {
        let nonce = zego_kafka_bridge::sender::random_nonce();
        let signed = zego_kafka_bridge::sender::sign_callback(
            body,
            &zego_kafka_bridge::sender::Signing {
                nonce: &nonce,
                timestamp: timestamp / 1000,
                ..zego_kafka_bridge::sender::Signing::now(SECRET)
            },
        )
        .unwrap();
        let text = String::from_utf8(signed.body.clone()).unwrap();
        assert!(
            text.contains(&format!("\"Timestamp\":{}", timestamp / 1000 * 1000)),
            "{text}"
        );
        let answer = app.post_to(Product::Asr, &signed).await;
        assert_eq!(answer.status, status, "{:?}", answer.body);
    }
    // A seconds value where ASR documents milliseconds is an hour-old-looking value of 1970:
    // refused as skewed, never taken for now.
    let seconds = chrono::Utc::now().timestamp();
    let nonce = "42";
    let signature = zego_kafka_bridge::zego::sign(SECRET, &seconds.to_string(), nonce);
    let mut value: Json = serde_json::from_str(body).unwrap();
    value["Timestamp"] = json!(seconds);
    value["Nonce"] = json!(nonce);
    value["Signature"] = json!(signature);
    let answer = app
        .post_to(
            Product::Asr,
            &zego_kafka_bridge::sender::SignedCallback {
                body: value.to_string().into_bytes(),
                content_type: "application/json",
            },
        )
        .await;
    assert_eq!(answer.status, 401, "{:?}", answer.body);
}

/// The names two products share (PRODUCTS.md §11.2) make two events on two topics, never one
/// taken for a retry of the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_names_of_two_products_make_two_events() {
    let app = spawn_products_app_with(&[]).await;
    let rtc_room = r#"{"event":"room_create","appid":"1","room_id":"room1","room_session_id":"99","room_create_time":"1700000000000","id_name":"u1","timestamp":"1","nonce":"1","signature":"s"}"#;
    let zim_room = |operator: &str| {
        format!(
            r#"{{"event":"room_create","appid":"1","room_id":"room1","operator_account":"{operator}","room_name":"r","attributes":[],"timestamp":1,"nonce":"1","signature":"s"}}"#
        )
    };
    assert_eq!(app.post_signed(rtc_room).await.status, 200);
    for operator in ["alice", "bob"] {
        let answer = app.post_signed_to(Product::Zim, &zim_room(operator)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let agent = r#"{"Event":"ASRResult","AppId":1,"AgentInstanceId":"7","Data":{"UserId":"u","Round":1,"Text":"hi"},"Timestamp":1,"Nonce":"1","Signature":"s"}"#;
    let asr = r#"{"Event":"ASRResult","AppId":1,"TaskId":"7","RoomId":"r","Data":{"UserId":"u","Round":1,"Text":"hi"},"Timestamp":1,"Nonce":"1","Signature":"s"}"#;
    assert_eq!(
        app.post_signed_to(Product::AiAgent, agent).await.status,
        200
    );
    assert_eq!(app.post_signed_to(Product::Asr, asr).await.status, 200);
    let player = r#"{"EventType":3,"AppID":1,"PlayerId":"7","RoomId":"r","EventTime":"1700000000000","Detail":{"Status":4},"Timestamp":"1","Nonce":"1","Signature":"s"}"#;
    let human = r#"{"EventType":3,"AppId":1,"TaskId":"7","EventTime":1700000000000,"Detail":{"Status":3},"Timestamp":"1","Nonce":"1","Signature":"s"}"#;
    assert_eq!(
        app.post_signed_to(Product::CloudPlayer, player)
            .await
            .status,
        200
    );
    assert_eq!(
        app.post_signed_to(Product::DigitalHuman, human)
            .await
            .status,
        200
    );

    let wait = Duration::from_secs(10);
    let rtc = consume(&app.topic("room.created"), 1, wait).await;
    assert_eq!(rtc.len(), 1);
    assert_eq!(rtc[0].value["room_session_id"], "99");
    let zim = consume(&app.topic("zim.room.created"), 2, wait).await;
    let operators: Vec<&str> = zim
        .iter()
        .map(|record| record.value["operator_account"].as_str().unwrap())
        .collect();
    assert_eq!(
        operators.len(),
        2,
        "the second ZIM room_create is not a retry of the first"
    );
    assert!(operators.contains(&"alice") && operators.contains(&"bob"));
    for (topic, key) in [
        ("ai_agent.asr.result", "7"),
        ("asr.result", "7"),
        ("cloud_player.player.status_changed", "7"),
        ("digital_human.stream_task.status", "7"),
    ] {
        let records = consume(&app.topic(topic), 1, wait).await;
        assert_eq!(records.len(), 1, "{topic}");
        assert_eq!(records[0].key.as_deref(), Some(key), "{topic}");
    }
    assert_eq!(
        consume(&app.topic("unrecognized"), 1, Duration::from_secs(2))
            .await
            .len(),
        0,
        "nothing fell through to RTC's unrecognized topic"
    );
}

/// ZIM waits about 2.5 s for `before_send_msg`, then fails the message. The verdict comes at
/// once while Kafka is away (in every ack mode), other callbacks get 503, and the event is
/// published once Kafka is back: answered, so never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_send_msg_is_answered_at_once_while_kafka_is_down_and_published_after() {
    let body = samples::ALL
        .iter()
        .find(|sample| sample.file == "products/zim.before_send_msg.json")
        .unwrap()
        .body;
    for mode in ["queued", "delivered", "spooled"] {
        let prefix = unique_prefix();
        let cluster = mock_cluster(&prefix);
        let spool = scratch_file("spool");
        let mut settings = vec![
            ("ZEGO_BRIDGE_ACK_MODE", mode),
            ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "300"),
            ("ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS", "200"),
            ("ZEGO_BRIDGE_ZIM_BEFORE_SEND_VERDICT", "send"),
        ];
        match mode {
            "spooled" => settings.push(("ZEGO_BRIDGE_SPOOL_DIR", spool.to_str().unwrap())),
            "delivered" => settings.push(("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS", "2000")),
            _ => {}
        }
        let app = spawn_app_on(&prefix, &cluster.bootstrap_servers(), &settings).await;
        cluster.broker_down(1).unwrap();
        if mode != "spooled" {
            app.wait_for_readiness(503, Duration::from_secs(15)).await;
        }
        let mut request_ids = Vec::new();
        for n in 0..3 {
            let request_id = format!("{mode}-{n}");
            let mut value: Json = serde_json::from_str(body).unwrap();
            value["request_id"] = json!(request_id);
            let began = Instant::now();
            let answer = app.post_signed_to(Product::Zim, &value.to_string()).await;
            let took = began.elapsed();
            assert_eq!(answer.status, 200, "{mode}: {:?}", answer.body);
            assert_eq!(
                answer.body,
                json!({"result": 1}),
                "{mode}: the configured verdict"
            );
            assert!(
                took < Duration::from_millis(500),
                "{mode}: answered in {took:?}, ZIM gives up after 2.5 s"
            );
            request_ids.push(request_id);
        }
        if mode != "spooled" {
            let send_msg = samples::ALL
                .iter()
                .find(|sample| sample.file == "products/zim.send_msg.json")
                .unwrap()
                .body;
            let answer = app.post_signed_to(Product::Zim, send_msg).await;
            assert_eq!(answer.status, 503, "{mode}: other callbacks wait for Kafka");
        }
        cluster.broker_up(1).unwrap();
        app.wait_for_readiness(200, Duration::from_secs(15)).await;
        let records = consume_mock(
            &cluster.bootstrap_servers(),
            &app.topic("zim.message.before_send"),
            3,
            Duration::from_secs(30),
        )
        .await;
        let mut published: Vec<String> = records
            .iter()
            .map(|record| record.value["request_id"].as_str().unwrap().to_owned())
            .collect();
        published.sort();
        assert_eq!(
            published, request_ids,
            "{mode}: every answered check is published"
        );
        assert_eq!(app.stop().await.undelivered, 0, "{mode}");
    }
}

/// A bridge for RTC alone: the other products' paths answer 404 naming the setting, their
/// topics are neither expected nor reported missing (the pod is ready with RTC's topics only),
/// and Cloud Recording's callbacks on the RTC path need `cloud_recording` listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_takes_only_the_products_it_is_configured_for() {
    let prefix = unique_prefix();
    create_topics_of_products(&prefix, &[Product::Rtc]).await;
    let app = spawn_app_on(&prefix, &brokers(), &[("ZEGO_BRIDGE_PRODUCTS", "rtc")]).await;
    let metrics = app.metrics().await;
    let missing: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("zego_bridge_kafka_topic_missing{"))
        .collect();
    assert!(!missing.is_empty());
    assert!(
        missing
            .iter()
            .all(|line| line.ends_with(" 0") && !line.contains(".zim.")),
        "{missing:?}"
    );
    assert_eq!(app.get("/readyz").await.0, 200);

    let zim_room = r#"{"event":"room_create","appid":"1","timestamp":1,"nonce":"n","signature":"s","room_id":"r","operator_account":"u"}"#;
    let answer = app.post_signed_to(Product::Zim, zim_room).await;
    assert_eq!(answer.status, 404, "{:?}", answer.body);
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.contains("ZEGO_BRIDGE_PRODUCTS") && message.contains("`zim`"),
        "{message}"
    );
    let recording =
        r#"{"event_type":1,"app_id":1,"task_id":"t","timestamp":"1","nonce":"n","signature":"s"}"#;
    let answer = app.post_signed(recording).await;
    assert_eq!(answer.status, 404, "{:?}", answer.body);
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .contains("`cloud_recording`"));
    assert_eq!(app.post_signed(&mix_start(1)).await.status, 200);
    assert_eq!(app.stop().await.undelivered, 0);
}

/// A user who enters a ZIM room, and enters it again ten seconds later, sends two bodies that
/// differ only in `timestamp` ("the server time when the room is entered") and `nonce`: two
/// events in Kafka, not one answered 200 twice. The same delivery sent again is still one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_entering_a_zim_room_twice_is_published_twice() {
    let app = spawn_products_app_with(&[]).await;
    let body = r#"{"appid":"1","event":"room_enter","room_id":"r1","operator_account":"userA","nonce":"0","signature":"s","timestamp":0}"#;
    let first = sign_at(body, SECRET, unix_now() - 10, "1001");
    let second = sign_at(body, SECRET, unix_now(), "1002");
    for callback in [&first, &second, &second] {
        let answer = app.post_to(Product::Zim, callback).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let records = consume(&app.topic("zim.room.entered"), 3, Duration::from_secs(5)).await;
    let ids: std::collections::HashSet<String> = records
        .iter()
        .map(|record| record.value["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(records.len(), 2, "two entries, and the repeat once");
    assert_eq!(ids.len(), 2);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"zego_bridge_duplicates_total{type="zim.room.entered"} 1"#),
        "only the byte-identical repeat is a duplicate: {metrics}"
    );
}
