use serde_json::{json, Value as Json};

use super::*;
use crate::event::catalog::ALL;
use crate::event::schema;
use crate::samples::{self, SampleEncoding};
use crate::zego::{sniff, Encoding};

const RECEIVED_AT_MS: i64 = 1_700_000_000_123;

fn normalize_body(body: &[u8], encoding: Encoding) -> (Json, Vec<&'static str>, Option<String>) {
    let callback = RawCallback::decode(body, encoding).expect("decodes");
    let product = crate::zego::classify(&callback.root).unwrap_or(Product::Rtc);
    let common = CommonFields::read_for(&callback.root, product).expect("common fields");
    let event = normalize(&callback, &common, product, RECEIVED_AT_MS);
    let json: Json = serde_json::from_slice(&event.to_json()).unwrap();
    (
        json,
        event.coercion_failures.clone(),
        event.partition_key.as_deref().map(str::to_owned),
    )
}

fn normalize_json(body: Json) -> Json {
    normalize_body(body.to_string().as_bytes(), Encoding::Json).0
}

/// The vendor samples carry placeholder timestamps; give them a numeric one.
fn sample_body(sample: &samples::Sample) -> String {
    sample.body.replace(
        r#""Timestamp": "timestamp""#,
        r#""Timestamp": "1700000000""#,
    )
}

fn validate(event: &Json) {
    let kind = event["type"].as_str().unwrap();
    let kind = crate::event::catalog::by_name(kind).unwrap();
    let schema = schema::schema_for(kind);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|err| format!("{err} at {}", err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not match its schema: {errors:#?}\n{event:#}",
        kind.name
    );
}

#[test]
fn every_sample_normalizes_to_its_type_and_matches_the_schema() {
    let expected_type = |sample: &samples::Sample| match sample.event() {
        "cloud_recording_status" => "cloud_recording.status",
        other => crate::event::catalog::resolve(sample.product, other).0.name,
    };
    let mut seen = std::collections::HashSet::new();
    for sample in samples::callbacks() {
        let body = sample_body(sample);
        let encoding = match sample.encoding {
            SampleEncoding::Form => Encoding::Form,
            _ => Encoding::Json,
        };
        assert_eq!(sniff(body.as_bytes()), encoding, "{}", sample.file);
        let (event, failures, _) = normalize_body(body.as_bytes(), encoding);
        assert_eq!(event["type"], expected_type(sample), "{}", sample.file);
        // Only the retired Digital Human API's sample is of a kind the catalog leaves out.
        if !sample.file.ends_with(".legacy.json") {
            assert!(
                !event["type"].as_str().unwrap().ends_with("unrecognized"),
                "{}",
                sample.file
            );
        }
        assert!(
            failures.is_empty(),
            "{}: fields with the wrong form: {failures:?}",
            sample.file
        );
        validate(&event);
        seen.insert(event["type"].as_str().unwrap().to_owned());
    }
    // Every type but the `unrecognized` ones has a vendor sample.
    let known: std::collections::HashSet<String> = ALL
        .iter()
        .filter(|kind| !kind.zego_events.is_empty() || kind.name == "cloud_recording.status")
        .map(|kind| kind.name.to_owned())
        .collect();
    seen.retain(|name| !name.ends_with("unrecognized"));
    let without_sample: std::collections::HashSet<String> =
        known.difference(&seen).cloned().collect();
    // The vendor printed samples of two Cloud Player events only; the others are checked on
    // bodies built from its tables (`cloud_player_events_without_a_sample`).
    let expected: std::collections::HashSet<String> = [
        "cloud_player.player.destroyed",
        "cloud_player.player.status_changed",
        "cloud_player.player.exception",
        "cloud_player.upload.failed",
        "cloud_player.upload.status_changed",
        "cloud_player.upload.cancel_failed",
        "cloud_player.upload.exception",
        "cloud_player.upload.expired",
        // The vendor printed no body of the legacy end-of-recording callback.
        "cloud_recording.ended_legacy",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(without_sample, expected);
}

#[test]
fn every_json_sample_decodes_the_same_as_a_form() {
    for sample in samples::callbacks().filter(|sample| sample.encoding == SampleEncoding::Json) {
        let body: Json = serde_json::from_str(&sample_body(sample)).unwrap();
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in body.as_object().unwrap() {
            match value {
                Json::String(text) => {
                    form.append_pair(key, text);
                }
                Json::Array(items) if items.iter().all(Json::is_string) => {
                    for item in items {
                        form.append_pair(key, item.as_str().unwrap());
                    }
                }
                Json::Number(number) => {
                    form.append_pair(key, &number.to_string());
                }
                // Nested objects cannot be carried by a form; such callbacks are JSON-only.
                _ => {}
            }
        }
        let form = form.finish();
        let (from_form, failures, _) = normalize_body(form.as_bytes(), Encoding::Form);
        assert!(failures.is_empty(), "{}: {failures:?}", sample.file);
        let (from_json, ..) = normalize_body(sample_body(sample).as_bytes(), Encoding::Json);
        assert_eq!(from_form["type"], from_json["type"], "{}", sample.file);
        // A form cannot tell a list of one from its item, and the id does not take one for the
        // other (`["a"]` is not `"a"`): such a sample gives the same event under another id.
        let form_carries_all = body.as_object().unwrap().values().all(|value| match value {
            Json::Object(_) => false,
            Json::Array(items) => items.len() != 1 && items.iter().all(Json::is_string),
            _ => true,
        });
        if form_carries_all {
            assert_eq!(
                from_form, from_json,
                "{}: form and JSON differ",
                sample.file
            );
        }
        validate(&from_form);
    }
}

#[test]
fn broken_samples_are_not_decodable() {
    for sample in samples::ALL
        .iter()
        .filter(|sample| sample.encoding == SampleEncoding::Broken)
    {
        assert!(
            RawCallback::decode(sample.body.as_bytes(), Encoding::Json).is_err(),
            "{} should not decode",
            sample.file
        );
    }
}

#[test]
fn room_close_sample_in_detail() {
    let sample = samples::ALL
        .iter()
        .find(|sample| sample.file == "room_close.json")
        .unwrap();
    let (event, _, key) = normalize_body(sample.body.as_bytes(), Encoding::Json);
    let id = event["id"].clone();
    assert_eq!(
        event,
        json!({
            "id": id,
            "type": "room.closed",
            "zego_event": "room_close",
            "schema_version": 1,
            "app_id": 1,
            "sent_at": 1499676989,
            "received_at_ms": RECEIVED_AT_MS,
            "occurred_at_ms": 1499676989909i64,
            "room_id": "rid_1242649",
            "room_session_id": "858012925204410400",
            "close_reason_code": 1,
            "close_reason": "heartbeat_timeout",
            "closed_at_ms": 1499676989909i64,
            "extra": {}
        })
    );
    assert_eq!(key.as_deref(), Some("rid_1242649"));
}

#[test]
fn strings_and_numbers_give_the_same_event() {
    let as_strings = normalize_json(json!({
        "event": "room_logout", "appid": "7", "timestamp": "1499676978", "nonce": "1", "signature": "s",
        "room_id": "r", "room_seq": "6085791336856668982", "user_account": "u", "session_id": "0",
        "logout_time": "1499676978027", "reason": "3", "user_role": "1", "user_update_seq": "13"
    }));
    let as_numbers = normalize_json(json!({
        "event": "room_logout", "appid": 7, "timestamp": 1499676978, "nonce": 2, "signature": "t",
        "room_id": "r", "room_seq": 6085791336856668982u64, "user_account": "u", "session_id": 0,
        "logout_time": 1499676978027i64, "reason": 3, "user_role": 1, "user_update_seq": 13
    }));
    assert_eq!(as_strings, as_numbers);
    assert_eq!(as_numbers["reason_code"], 3);
    assert_eq!(as_numbers["reason"], "duplicate_login_or_kicked_out");
    assert_eq!(as_numbers["room_session_id"], "6085791336856668982");
    validate(&as_numbers);
}

#[test]
fn u64_max_ids_stay_exact() {
    let body =
        br#"{"event":"room_create","appid":4294967295,"timestamp":1,"nonce":"n","signature":"s",
        "room_id":"r","room_session_id":18446744073709551615}"#;
    let (event, failures, _) = normalize_body(body, Encoding::Json);
    assert!(failures.is_empty());
    assert_eq!(event["room_session_id"], "18446744073709551615");
    assert_eq!(event["app_id"], 4294967295u64);
    let form = b"event=room_create&appid=1&timestamp=1&nonce=n&signature=s&room_id=r&room_session_id=18446744073709551615";
    let (event, ..) = normalize_body(form, Encoding::Form);
    assert_eq!(event["room_session_id"], "18446744073709551615");
}

#[test]
fn an_id_beyond_u64_is_kept_verbatim_under_extra_and_reported() {
    let body = br#"{"event":"room_create","appid":1,"timestamp":1,"nonce":"n","signature":"s",
        "room_id":"r","room_session_id":18446744073709551616}"#;
    let (event, failures, _) = normalize_body(body, Encoding::Json);
    assert_eq!(failures, vec!["room_session_id"]);
    assert_eq!(event["room_session_id"], Json::Null);
    // Exact text preserved: serde_json reads it back as a float, so compare the raw output.
    let callback = RawCallback::decode(body, Encoding::Json).unwrap();
    let common = CommonFields::read(&callback.root).unwrap();
    let text = String::from_utf8(normalize(&callback, &common, Product::Rtc, 0).to_json()).unwrap();
    assert!(
        text.contains(r#""extra":{"room_session_id":18446744073709551616}"#),
        "{text}"
    );
}

#[test]
fn agreeing_aliases_are_consumed_and_disagreeing_ones_kept() {
    let event = normalize_json(json!({
        "event": "stream_close", "appid": "1", "timestamp": "1", "nonce": "n", "signature": "s",
        "room_id": "room1", "channel_id": "room1",
        "stream_id": "s1", "stream_alias": "other",
        "user_id": "u1"
    }));
    assert_eq!(event["room_id"], "room1");
    assert_eq!(event["stream_id"], "s1");
    assert_eq!(event["user_id"], "u1");
    assert_eq!(event["extra"], json!({"stream_alias": "other"}));
    validate(&event);
}

#[test]
fn aliases_fill_in_when_the_main_key_is_missing() {
    let event = normalize_json(json!({
        "event": "stream_create", "appid": "1", "timestamp": "1", "nonce": "n", "signature": "s",
        "channel_id": "c", "stream_alias": "a", "publish_id": "p", "publish_name": "pn",
        "create_time": "1687981272", "recreate": "1", "rtmp_url": "rtmp://one"
    }));
    assert_eq!(event["room_id"], "c");
    assert_eq!(event["stream_id"], "a");
    assert_eq!(event["user_id"], "p");
    assert_eq!(event["user_name"], "pn");
    assert_eq!(event["created_at_ms"], 1687981272000i64);
    assert_eq!(event["occurred_at_ms"], 1687981272000i64);
    assert_eq!(event["recreated"], true);
    assert_eq!(event["rtmp_urls"], json!(["rtmp://one"]));
    assert_eq!(event["extra"], json!({}));
    validate(&event);
}

#[test]
fn unknown_fields_nested_or_not_are_kept_verbatim() {
    let event = normalize_json(json!({
        "Event": "censor_audio_v2_status", "AppId": 1, "Timestamp": 1, "Nonce": "n", "Signature": "s",
        "TaskId": "t", "Status": 0, "NewTopLevel": {"a": [1, 2.50]},
        "AuxInfo": {"RoomId": "r", "CensorStreamTime": 31, "NewNested": "x"}
    }));
    assert_eq!(event["room_id"], "r");
    assert_eq!(event["censored_stream_seconds"], 31);
    assert_eq!(event["status"], "finished");
    assert_eq!(
        event["extra"],
        json!({"NewTopLevel": {"a": [1, 2.50]}, "AuxInfo": {"NewNested": "x"}})
    );
    validate(&event);
}

#[test]
fn a_field_of_the_wrong_form_is_null_and_its_value_kept() {
    let (event, failures, _) = normalize_body(
        br#"{"event":"room_close","appid":1,"timestamp":1,"nonce":"n","signature":"s",
            "room_id":"r","close_reason":"soon","room_close_time":{"at":1}}"#,
        Encoding::Json,
    );
    assert_eq!(failures, vec!["close_reason", "closed_at_ms"]);
    assert_eq!(event["close_reason_code"], Json::Null);
    assert_eq!(event["close_reason"], Json::Null);
    assert_eq!(
        event["extra"],
        json!({"close_reason": "soon", "room_close_time": {"at": 1}})
    );
    validate(&event);
}

#[test]
fn an_undocumented_code_is_named_unknown() {
    let event = normalize_json(json!({
        "event": "stream_close", "appid": "1", "timestamp": "1", "nonce": "n", "signature": "s",
        "type": "101"
    }));
    assert_eq!(event["close_reason_code"], 101);
    assert_eq!(event["close_reason"], "unknown");
    validate(&event);
}

#[test]
fn json_text_fields_stay_strings() {
    let sample = samples::ALL
        .iter()
        .find(|sample| sample.file == "stream_create.json")
        .unwrap();
    let (event, ..) = normalize_body(sample.body.as_bytes(), Encoding::Json);
    assert_eq!(event["stream_attr"], "{\"cid\":0}");
    assert_eq!(event["stream_seq"], 1);
    // The sample's aliases disagree with the main keys: both values are kept.
    assert_eq!(event["room_id"], "room1");
    assert_eq!(event["extra"]["channel_id"], "0xb-0x1");
    assert_eq!(event["extra"]["publish_id"], "publish");
    assert_eq!(event["extra"]["stream_alias"], "aaa");
}

#[test]
fn moderation_image_time_is_read_as_beijing_time() {
    let sample = samples::ALL
        .iter()
        .find(|sample| sample.file == "censor_video_v2_img_result.json")
        .unwrap();
    let (event, _, key) = normalize_body(sample.body.as_bytes(), Encoding::Json);
    // 2024-06-07 15:20:42.586 at UTC+8 is 07:20:42.586 UTC.
    assert_eq!(event["image_captured_at_ms"], 1717744842586i64);
    assert_eq!(event["occurred_at_ms"], 1717744842586i64);
    assert_eq!(
        event["risk_info_list"][0]["RiskDetail"]["FaceInfoList"][0]["Location"][0],
        487
    );
    assert_eq!(key.as_deref(), Some("room_1"));
}

/// The pairs an outside attack found merged into one id (so the second was answered 200 and
/// never published), and the spellings of one callback that got two.
#[test]
fn the_id_tells_apart_every_callback_the_old_identity_fields_merged() {
    let id = |body: Json| normalize_json(body)["id"].clone();
    let envelope = |event: &str| json!({"event": event, "appid": "1", "timestamp": "100", "nonce": "n", "signature": "s"});
    let with = |event: &str, fields: Json| {
        let mut body = envelope(event);
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        id(body)
    };
    let pairs = [
        (
            "room_login",
            json!({"room_id": "r", "user_account": "u", "session_id": "abc", "user_update_seq": "1"}),
            json!({"room_id": "r", "user_account": "u", "session_id": "abc", "user_update_seq": "2"}),
        ),
        (
            "compose",
            json!({"status": "1", "file_url": "a"}),
            json!({"status": "1", "file_url": "b"}),
        ),
        (
            "room_close",
            json!({"room_id": "r", "close_reason": "1", "close_time": "1700000000000"}),
            json!({"room_id": "r", "close_reason": "2", "close_time": "1700000001000"}),
        ),
        (
            "stream_close",
            json!({"room_id": "r", "stream_id": "s", "type": "0"}),
            json!({"room_id": "r", "stream_id": "s", "type": "1"}),
        ),
    ];
    for (event, first, second) in pairs {
        assert_ne!(with(event, first), with(event, second), "{event}");
    }
    // One unrecognized callback, as JSON and as a form, with a number or its digits, signed
    // with another secret: one id.
    let json_body = br#"{"event":"room_user_count","appid":"9","timestamp":"1","nonce":"a","signature":"s","room_id":"r9","user_count":3}"#;
    let form_body =
        b"event=room_user_count&appid=9&timestamp=1&nonce=a&signature=t&room_id=r9&user_count=3";
    let string_body = br#"{"event":"room_user_count","appid":9,"timestamp":1,"nonce":"a","signature":"u","room_id":"r9","user_count":"3"}"#;
    let ids: Vec<Json> = [
        normalize_body(json_body, Encoding::Json).0["id"].clone(),
        normalize_body(form_body, Encoding::Form).0["id"].clone(),
        normalize_body(string_body, Encoding::Json).0["id"].clone(),
    ]
    .to_vec();
    assert_eq!(ids[0], ids[1], "JSON and form");
    assert_eq!(ids[0], ids[2], "number and digits");
}

/// Only the envelope the signature check reads is left out of the id: a second `nonce`, or a
/// `Nonce` or `SIGNATURE` beside the real ones, is body. Left out, a forged body carrying one
/// kept the genuine callback's id, passed as its retry on another replica and was published
/// (an outside attack). A retry signed afresh still keeps its id.
#[test]
fn an_extra_envelope_key_is_body_and_makes_another_event() {
    let genuine = json!({"event": "room_login", "appid": "1", "timestamp": "100", "nonce": "n", "signature": "s",
        "room_id": "r", "user_account": "u", "session_id": "abc", "room_seq": "7", "user_update_seq": "1"});
    let id = |body: &Json| normalize_json(body.clone())["id"].clone();
    let mut resigned = genuine.clone();
    resigned["timestamp"] = json!("160");
    resigned["nonce"] = json!("m");
    resigned["signature"] = json!("t");
    assert_eq!(
        id(&genuine),
        id(&resigned),
        "a retry signed afresh is the same event"
    );
    for (key, value) in [
        ("Nonce", json!("ATTACKER-CONTROLLED-PAYLOAD")),
        ("SIGNATURE", json!({"nested": "x"})),
        ("TimeStamp", json!("100")),
    ] {
        let mut forged = genuine.clone();
        forged[key] = value;
        assert_ne!(id(&genuine), id(&forged), "{key}");
    }
    let duplicated = br#"{"event":"room_login","appid":"1","timestamp":"100","nonce":"n","signature":"s","room_id":"r","user_account":"u","session_id":"abc","room_seq":"7","user_update_seq":"1","nonce":"forged"}"#;
    // An exact repeat of a key is dropped when the body is read (its first value is the one
    // signed): it carries nothing to Kafka, so it may keep the id.
    let (event, _, _) = normalize_body(duplicated, Encoding::Json);
    assert_eq!(event["id"], id(&genuine));
    assert!(!event.to_string().contains("forged"), "{event}");
}

#[test]
fn zego_event_is_the_catalog_name_whatever_the_spelling() {
    let event = normalize_json(json!({
        "event": " Room_Close ", "appid": "1", "timestamp": "1", "nonce": "n", "signature": "s",
        "room_id": "r"
    }));
    assert_eq!(event["type"], "room.closed");
    assert_eq!(event["zego_event"], "room_close");
    validate(&event);
    let unknown = normalize_json(json!({
        "event": " Room_User_Count", "appid": "1", "timestamp": "1", "nonce": "n", "signature": "s"
    }));
    assert_eq!(unknown["zego_event"], "room_user_count");
}

#[test]
fn the_id_leaves_out_the_envelope_only_where_the_body_names_the_occurrence() {
    // room_login names its occurrence by `room_seq` and `user_update_seq` ("+1 on every login
    // or logout"): a retry signed afresh is the same login.
    let login = |nonce: &str, timestamp: &str, session: &str, seq: Option<&str>| {
        let mut body = json!({
            "event": "room_login", "appid": "1", "timestamp": timestamp, "nonce": nonce,
            "signature": "x", "room_id": "r", "room_seq": "9", "user_account": "u",
            "session_id": session, "login_time": "1499676978027"
        });
        if let Some(seq) = seq {
            body["user_update_seq"] = json!(seq);
        }
        normalize_json(body)["id"].clone()
    };
    let seq = Some("3");
    assert_eq!(login("1", "100", "5", seq), login("2", "160", "5", seq));
    assert_ne!(login("1", "100", "5", seq), login("1", "100", "6", seq));
    // The v2 body has no `user_update_seq`: nothing but the envelope tells two logins apart.
    assert_ne!(login("1", "100", "5", None), login("2", "160", "5", None));
    assert_eq!(login("1", "100", "5", None), login("1", "100", "5", None));
    // An empty one names nothing either.
    assert_ne!(
        login("1", "100", "5", Some(" ")),
        login("2", "160", "5", Some(" "))
    );
}

/// ZIM's room and group callbacks carry nothing but `timestamp` ("the server time when the room
/// is entered") to tell one entry from the next: a user entering twice is two events.
#[test]
fn a_user_entering_one_room_twice_is_two_events() {
    for event in [
        "room_enter",
        "room_exit",
        "room_create",
        "room_destroy",
        "group_join",
        "group_exit",
        "group_create",
        "group_destroy",
    ] {
        let callback = |timestamp: i64, nonce: &str| {
            normalize_body(
                json!({
                    "appid": 1, "event": event, "nonce": nonce, "signature": "s",
                    "timestamp": timestamp, "room_id": "r1", "group_id": "g1",
                    "user_id": "u1", "user_ids": ["u1"], "operator": "u1"
                })
                .to_string()
                .as_bytes(),
                Encoding::Json,
            )
            .0["id"]
                .clone()
        };
        assert_ne!(
            callback(1_499_676_978, "1"),
            callback(1_499_676_988, "2"),
            "{event}"
        );
        assert_ne!(
            callback(1_499_676_978, "1"),
            callback(1_499_676_978, "2"),
            "{event}"
        );
    }
}

/// The canonical form keeps every value: no list of one is its item, at any depth, and each
/// copy of a repeated key in a nested object counts (a consumer may read either).
#[test]
fn the_id_keeps_every_value_at_every_depth() {
    let id = |extra: &str| {
        normalize_body(
            format!(
                r#"{{"event":"room_user_count","appid":"9","timestamp":"1","nonce":"a","signature":"s","room_id":"r9","x":{extra}}}"#
            )
            .as_bytes(),
            Encoding::Json,
        )
        .0["id"]
            .clone()
    };
    let values = [
        r#""a""#,
        r#"["a"]"#,
        r#"[["a"]]"#,
        r#"[[["a"]]]"#,
        "null",
        "[null]",
        "[[]]",
        "[]",
        r#"{"k":"a"}"#,
        r#"{"k":["a"]}"#,
        r#"{"k":1,"k":2}"#,
        r#"{"k":1,"k":3}"#,
        r#"{"k":3,"k":1}"#,
        r#"{"k":1}"#,
        r#"[{"k":1,"k":2}]"#,
        r#"[{"k":1,"k":3}]"#,
    ];
    let ids: Vec<Json> = values.iter().map(|value| id(value)).collect();
    for (i, first) in ids.iter().enumerate() {
        for (j, second) in ids.iter().enumerate().skip(i + 1) {
            assert_ne!(first, second, "{} and {}", values[i], values[j]);
        }
    }
    assert_eq!(id(r#"{"b":1,"a":2}"#), id(r#"{"a":2,"b":1}"#), "key order");
}

#[test]
fn unrecognized_events_keep_every_field_and_get_a_content_id() {
    let body = |nonce: &str, count: u32| {
        json!({
            "event": "room_user_count", "appid": "9", "timestamp": "1", "nonce": nonce,
            "signature": "s", "room_id": "r9", "user_count": count
        })
    };
    let (first, _, key) = normalize_body(body("1", 3).to_string().as_bytes(), Encoding::Json);
    assert_eq!(first["type"], "unrecognized");
    assert_eq!(first["zego_event"], "room_user_count");
    assert_eq!(first["extra"], json!({"room_id": "r9", "user_count": 3}));
    assert_eq!(key.as_deref(), Some("r9"));
    validate(&first);
    assert_eq!(first["id"], normalize_json(body("1", 3))["id"]);
    assert_ne!(first["id"], normalize_json(body("1", 4))["id"]);
    // Nothing in an unknown callback is known to name its occurrence: the envelope counts.
    assert_ne!(first["id"], normalize_json(body("2", 3))["id"]);
}

#[test]
fn partition_key_prefers_room_then_task_then_stream() {
    let mix = normalize_body(
        br#"{"event":"mix_stop","appid":"1","timestamp":"1","nonce":"n","signature":"s","task_id":"t","seq":"1"}"#,
        Encoding::Json,
    );
    assert_eq!(mix.2.as_deref(), Some("t"));
    let record = normalize_body(
        b"event=record&appid=1&timestamp=1&nonce=n&signature=s&stream_alias=aaaa",
        Encoding::Form,
    );
    assert_eq!(record.2.as_deref(), Some("aaaa"));
}

#[test]
fn schemas_in_the_repository_are_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for (file, schema) in schema::all() {
        let path = dir.join(&file);
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{file} is missing: run `UPDATE_SCHEMAS=1 cargo test schemas`")
        });
        assert!(
            committed == text,
            "{file} is stale: run `UPDATE_SCHEMAS=1 cargo test schemas`"
        );
    }
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_type().unwrap().is_file())
        .count();
    assert_eq!(
        files,
        ALL.len(),
        "schemas/ holds a file that is no type's schema"
    );
}

/// No schema may break a consumer built on the last release's (`schemas/released/`): a type
/// released stays, and each of its schemas passes [`schema::compatibility_problems`].
#[test]
fn released_schemas_are_still_honoured() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/released");
    if std::env::var_os("UPDATE_RELEASED_SCHEMAS").is_some() {
        for (file, schema) in schema::all() {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            std::fs::write(dir.join(file), text).unwrap();
        }
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(file) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let Some(name) = file.strip_suffix(".schema.json") else {
            continue;
        };
        let released: Json =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let kind = crate::event::catalog::by_name(name)
            .unwrap_or_else(|| panic!("the released type {name} is gone: consumers read it"));
        let problems = schema::compatibility_problems(&released, &schema::schema_for(kind));
        assert!(
            problems.is_empty(),
            "{name} would break consumers of the released schema: {problems:#?}\n\
             A rename or a type change needs a new schema_version and, where needed, a new topic \
             (docs/events.md, \"How schemas evolve\")."
        );
        checked += 1;
    }
    assert!(checked >= 22, "only {checked} released schemas found");
}

/// The compatibility check refuses each kind of breaking change, and lets the compatible ones
/// through: a check that passed whatever the schemas said would prove nothing.
#[test]
fn the_compatibility_check_refuses_every_breaking_change() {
    let released = schema::schema_for(&crate::event::catalog::ROOM_CLOSED);
    let check = |change: &dyn Fn(&mut Json)| {
        let mut current = released.clone();
        change(&mut current);
        schema::compatibility_problems(&released, &current)
    };
    assert!(check(&|_| {}).is_empty());
    // Compatible: a new optional property; a closed list of names turned into a string.
    assert!(check(&|s| {
        s["properties"]["new_field"] = json!({"type": ["string", "null"]});
    })
    .is_empty());
    let mut closed = released.clone();
    closed["properties"]["close_reason"] = json!({"enum": ["normal", "unknown", null]});
    assert!(schema::compatibility_problems(&closed, &released).is_empty());

    type Change = Box<dyn Fn(&mut Json)>;
    let breaking: Vec<(&str, Change)> = vec![
        (
            "removed",
            Box::new(|s| {
                s["properties"].as_object_mut().unwrap().remove("room_id");
            }),
        ),
        (
            "type changed",
            Box::new(|s| s["properties"]["close_reason_code"]["type"] = json!("string")),
        ),
        (
            "const changed",
            Box::new(|s| s["properties"]["schema_version"]["const"] = json!(2)),
        ),
        (
            "pattern changed",
            Box::new(|s| s["properties"]["room_session_id"]["pattern"] = json!("^x$")),
        ),
        (
            "added as required",
            Box::new(|s| {
                s["properties"]["new_field"] = json!({"type": "string"});
                s["required"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("new_field"));
            }),
        ),
        (
            "no longer required",
            Box::new(|s| {
                s["required"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|key| key != "room_id");
            }),
        ),
        (
            "closed",
            Box::new(|s| s["additionalProperties"] = json!(false)),
        ),
        (
            "any value narrowed",
            Box::new(|s| s["properties"]["extra"] = json!({})),
        ),
    ];
    for (what, change) in &breaking {
        assert!(
            !check(change.as_ref()).is_empty(),
            "{what} passed the check"
        );
    }
    // A name removed from a closed list.
    let mut names = closed.clone();
    names["properties"]["close_reason"] = json!({"enum": ["normal", null]});
    assert!(!schema::compatibility_problems(&closed, &names).is_empty());
    // Any JSON value narrowed to a type.
    let mut any = released.clone();
    any["properties"]["extra"] = json!({"description": "anything"});
    assert!(!schema::compatibility_problems(&any, &released).is_empty());
}

/// Cloud Player's events that the vendor printed no sample of, built from its tables.
#[test]
fn cloud_player_events_without_a_sample() {
    for (number, detail, kind, field, name) in [
        (
            2,
            r#"{"PlayTime":30,"Reason":2}"#,
            "cloud_player.player.destroyed",
            "reason",
            "idle_timeout",
        ),
        (
            3,
            r#"{"Status":4,"PlayIndex":1}"#,
            "cloud_player.player.status_changed",
            "status",
            "playing",
        ),
        (
            10002,
            r#"{"Reason":3}"#,
            "cloud_player.upload.failed",
            "reason",
            "file_too_large",
        ),
        (
            10003,
            r#"{"Status":2}"#,
            "cloud_player.upload.status_changed",
            "status",
            "uploading",
        ),
        (
            10004,
            r#"{"Reason":2}"#,
            "cloud_player.upload.cancel_failed",
            "reason",
            "already_uploaded",
        ),
        (
            10005,
            r#"{"Code":2}"#,
            "cloud_player.upload.exception",
            "code",
            "upload_error",
        ),
    ] {
        let id = if number > 10000 {
            "UploadTaskId"
        } else {
            "PlayerId"
        };
        let event = normalize_json(json!({
            "AppID": 1, "EventType": number, "Nonce": "1", "Timestamp": "1700000000",
            "Signature": "s", "EventTime": "1700000000123", id: "p1", "Detail": serde_json::from_str::<Json>(detail).unwrap(),
        }));
        assert_eq!(event["type"], kind);
        assert_eq!(event[field], name, "{kind}");
        assert_eq!(event["occurred_at_ms"], 1_700_000_000_123_i64);
        assert_eq!(event["extra"], json!({}), "{kind}: every field read");
        validate(&event);
    }
    let exception = normalize_json(json!({
        "AppID": 1, "EventType": 4, "Nonce": "1", "Timestamp": "1700000000", "Signature": "s",
        "EventTime": 1700000000123_i64, "PlayerId": "p1", "RoomId": "r", "Detail": {"Code": -7, "PlayIndex": 0},
    }));
    assert_eq!(exception["type"], "cloud_player.player.exception");
    assert_eq!(exception["code"], -7);
    let expired = normalize_json(json!({
        "AppID": "1", "EventType": 10006, "Nonce": "1", "Timestamp": "1700000000", "Signature": "s",
        "EventTime": "1700000000123", "UploadTaskId": "u1", "Detail": {},
    }));
    assert_eq!(expired["type"], "cloud_player.upload.expired");
    assert_eq!(expired["upload_task_id"], "u1");
}

/// The canonical form's lengths are written as `format!` writes them: the ids of every event
/// ever published depend on these bytes.
#[test]
fn canonical_lengths_are_decimal_text() {
    for len in [0, 1, 9, 10, 99, 100, 12_345, usize::MAX] {
        let mut canonical = Canonical(Vec::new());
        canonical.length(len);
        assert_eq!(canonical.0, format!("{len}:").into_bytes());
    }
}

proptest::proptest! {
    /// Event ids are the ids `uuid`'s own version-5 function makes (ids already in Kafka stay
    /// the ids of their callbacks), whatever SHA-1 implementation computes them.
    #[test]
    fn event_ids_are_standard_version_5_uuids(
        namespace in proptest::prelude::any::<u128>(),
        name in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let namespace = Uuid::from_u128(namespace);
        proptest::prop_assert_eq!(uuid_v5(&namespace, &name), Uuid::new_v5(&namespace, &name));
    }
}

/// Over every sample of every type: a change of any value ZEGO sends (each key of the body in
/// turn, and each key of a nested object) gives another id; the same callback signed afresh
/// (another `timestamp` and `nonce`) gets another id, unless its body names its occurrence, and
/// then the same.
#[test]
fn every_value_of_every_sample_is_part_of_its_id() {
    use crate::event::catalog::{self, Identity};
    let changed_value = |value: &Json| match value {
        Json::String(text) => json!(format!("{text}x")),
        Json::Number(number) => json!(number.as_i64().map_or(7, |n| n.wrapping_add(1))),
        Json::Null => json!("x"),
        other => json!([other]),
    };
    for sample in samples::callbacks().filter(|sample| sample.encoding == SampleEncoding::Json) {
        let body: Json = serde_json::from_str(&sample_body(sample)).unwrap();
        let id = |body: &Json| normalize_json(body.clone())["id"].clone();
        let original = id(&body);
        let object = body.as_object().unwrap();
        for key in object.keys() {
            if ["signature", "timestamp", "nonce"]
                .iter()
                .any(|envelope| key.eq_ignore_ascii_case(envelope))
            {
                continue;
            }
            // The keys that say which product and event it is change its type, not only its id.
            if ["event", "eventtype", "event_type", "appid", "app_id"]
                .iter()
                .any(|name| key.eq_ignore_ascii_case(name))
            {
                continue;
            }
            let mut changed = body.clone();
            changed[key] = changed_value(&body[key]);
            assert_ne!(original, id(&changed), "{}: {key} changed", sample.file);
            if let Some(nested) = body[key].as_object() {
                for inner in nested.keys() {
                    let mut changed = body.clone();
                    changed[key][inner] = changed_value(&body[key][inner]);
                    assert_ne!(
                        original,
                        id(&changed),
                        "{}: {key}.{inner} changed",
                        sample.file
                    );
                }
            }
        }
        let resigned = {
            let mut body = body.clone();
            for (key, value) in body.as_object_mut().unwrap() {
                if key.eq_ignore_ascii_case("nonce") {
                    *value = json!(format!(
                        "{}9",
                        value.as_str().map_or(value.to_string(), str::to_owned)
                    ));
                }
                if key.eq_ignore_ascii_case("timestamp") {
                    *value = json!("1700000060");
                }
            }
            body
        };
        let kind =
            catalog::by_name(normalize_json(body.clone())["type"].as_str().unwrap()).unwrap();
        let named_by_body = match kind.identity {
            Identity::Delivery => false,
            Identity::Body { distinct_by } => distinct_by.iter().all(|path| {
                let value = path.iter().fold(&body, |value, step| &value[step]);
                value
                    .as_str()
                    .map_or(value.is_number(), |text| !text.trim().is_empty())
            }),
        };
        if named_by_body {
            assert_eq!(original, id(&resigned), "{}: signed afresh", sample.file);
        } else {
            assert_ne!(original, id(&resigned), "{}: signed afresh", sample.file);
        }
    }
}

/// The end-of-recording callback of projects opened before 2021-11-29 (doc-zh.zego.im article
/// 5861, which prints no sample: this body is built from its table) is its own type: its
/// `event_type` 3 is "ended normally, no file recorded", not v2's image download failure.
#[test]
fn legacy_cloud_recording_keeps_its_own_meanings() {
    let legacy = normalize_json(json!({
        "app_id": 1234567890, "task_id": "XXXXXXXXXXXXXXXX", "room_id": "r1", "event_type": 3,
        "message": "no stream", "nonce": "n", "timestamp": "1636446416", "signature": "s",
        "file_info": []
    }));
    assert_eq!(legacy["type"], "cloud_recording.ended_legacy");
    assert_eq!(legacy["zego_event"], "cloud_recording_ended");
    assert_eq!(legacy["event_type"], "ended_without_files");
    assert_eq!(legacy["file_info"], json!([]));
    assert_eq!(legacy["extra"], json!({}));
    validate(&legacy);
    let partly = normalize_json(json!({
        "app_id": 1234567890, "task_id": "XXXXXXXXXXXXXXXX", "room_id": "r1", "event_type": 2,
        "message": "upload failed", "nonce": "n", "timestamp": "1636446416", "signature": "s",
        "file_info": [{"user_id": "u", "stream_id": "s1", "file_id": "f", "status": 4}]
    }));
    assert_eq!(partly["event_type"], "ended_abnormally_partly_uploaded");
    assert_eq!(partly["file_info"][0]["status"], 4);
    let v2 = normalize_json(json!({
        "app_id": 1234567890, "task_id": "XXXXXXXXXXXXXXXX", "room_id": "r1", "event_type": 3,
        "message": "", "nonce": "n", "timestamp": "1636446416", "signature": "s", "sequence": 2,
        "detail": {"image_type": 1, "image_url": "https://example.com/a.png"}
    }));
    assert_eq!(v2["type"], "cloud_recording.status");
    assert_eq!(v2["event_type"], "image_download_failed");
}

/// `snapshot_pic_list` is "Array SnapshotPicObject" in ZEGO's table and a string holding that
/// array in its sample: both are taken, and published as the same text.
#[test]
fn snapshot_pic_list_is_taken_as_an_array_or_as_text() {
    let list = r#"[{"url":"http://abc.com/1.jpg","offset":0}]"#;
    let body = |value: Json| {
        normalize_json(json!({
            "appid": "1", "event": "snapshot", "timestamp": "148150008", "nonce": "1",
            "signature": "s", "task_id": "t", "snapshot_pic_list": value
        }))
    };
    let as_text = body(json!(list));
    let as_array = body(serde_json::from_str(list).unwrap());
    assert_eq!(as_text["snapshot_pic_list"], list);
    assert_eq!(as_array["snapshot_pic_list"], list);
    assert_eq!(as_array["extra"], json!({}), "not a coercion failure");
    validate(&as_array);
}

/// Cloud Player's `PlayTime` is "the Unix second the player started playing": published as
/// sent and in milliseconds, like `CreateTime`.
#[test]
fn cloud_player_play_time_is_an_instant_in_milliseconds() {
    let event = normalize_json(json!({
        "AppID": 1, "EventType": 1, "EventTime": 1_700_000_000_123_i64, "PlayerId": "p1",
        "Timestamp": "1700000000", "Nonce": "n", "Signature": "s",
        "Detail": {"CreateTime": 1_699_999_990, "PlayTime": 1_699_999_995, "MaxIdleTime": 60}
    }));
    assert_eq!(event["type"], "cloud_player.player.created");
    assert_eq!(event["created_at_ms"], 1_699_999_990_000_i64);
    assert_eq!(event["played_at_ms"], 1_699_999_995_000_i64);
    assert_eq!(event["play_time"], 1_699_999_995);
    validate(&event);
}
