//! Property tests of the code that faces the network: body decoding, the common keys, the
//! signature and normalization. The same code is fuzzed by `fuzz/` (see the README); these
//! run in CI.

use proptest::prelude::*;
use zego_kafka_bridge::event::normalize;
use zego_kafka_bridge::zego::{self, sniff, CallbackSecrets, CommonFields, Encoding, RawCallback};

/// Whatever the bytes, decoding and normalizing return (never panic), and an event that comes
/// out serializes to a JSON object.
fn decode_and_normalize(body: &[u8]) {
    for encoding in [Encoding::Json, Encoding::Form, sniff(body)] {
        let Ok(callback) = RawCallback::decode(body, encoding) else {
            continue;
        };
        let Ok(common) = CommonFields::read(&callback.root) else {
            continue;
        };
        let event = normalize(&callback, &common, 0);
        let value: serde_json::Value =
            serde_json::from_slice(&event.to_json()).expect("an event is JSON");
        assert!(value.is_object());
    }
}

fn scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<u64>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,24}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
    ]
}

/// Keys the random fields use: the common keys are set separately (a second `Event` holding an
/// object is a malformed callback, refused with 400, not what this property is about).
const KEYS: &[&str] = &[
    "room_id",
    "channel_id",
    "room_session_id",
    "room_seq",
    "stream_id",
    "stream_alias",
    "close_reason",
    "type",
    "login_time",
    "user_role",
    "rtmp_url",
    "event_type",
    "TaskId",
    "Sequence",
    "Details",
    "AuxInfo",
    "Detail",
    "seq",
    "unknown_key",
];

const EVENTS: &[&str] = &[
    "room_create",
    "room_close",
    "room_login",
    "room_logout",
    "stream_create",
    "stream_close",
    "mix_start",
    "mix_stop",
    "transcode_start",
    "transcode_stop",
    "record",
    "compose",
    "procedure",
    "snapshot",
    "censor_audio_v2_result",
    "censor_video_v2_img_result",
    "censor_audio_v2_status",
    "something_new",
];

/// Callback-shaped JSON objects: the known keys with values of any type.
fn callback_like() -> impl Strategy<Value = serde_json::Value> {
    let nested =
        prop::collection::btree_map(prop::sample::select(KEYS), scalar(), 0..4).prop_map(|map| {
            serde_json::Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        });
    let value = prop_oneof![4 => scalar(), 1 => nested, 1 => prop::collection::vec(scalar(), 0..3).prop_map(serde_json::Value::from)];
    (
        prop::sample::select(EVENTS),
        prop::collection::btree_map(prop::sample::select(KEYS), value, 0..12),
    )
        .prop_map(|(event, fields)| {
            let mut object: serde_json::Map<String, serde_json::Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            object.insert("event".into(), event.into());
            object.insert("appid".into(), 1.into());
            object.insert("timestamp".into(), 1.into());
            object.insert("nonce".into(), "n".into());
            object.insert("signature".into(), "s".into());
            serde_json::Value::Object(object)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_and_normalize(&body);
    }

    #[test]
    fn arbitrary_text_never_panics(body in ".{0,256}") {
        decode_and_normalize(body.as_bytes());
    }

    #[test]
    fn callback_shaped_json_normalizes_to_a_valid_event(callback in callback_like()) {
        let body = callback.to_string();
        decode_and_normalize(body.as_bytes());
        let decoded = RawCallback::decode(body.as_bytes(), Encoding::Json).unwrap();
        let common = CommonFields::read(&decoded.root).unwrap();
        let event = normalize(&decoded, &common, 0);
        // Every key of the callback is somewhere: a declared field, the envelope, or `extra`.
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        prop_assert_eq!(json["schema_version"].as_u64(), Some(1));
        prop_assert!(json["extra"].is_object());
    }

    #[test]
    fn what_is_signed_verifies_and_any_change_does_not(
        // A secret is printable ASCII without the list's own separators (`,` between entries,
        // `=` after an app id) and without edge blanks, which the parser trims away.
        secret in "[!-~&&[^,=]]([ -~&&[^,=]]{0,38}[!-~&&[^,=]])?",
        timestamp in "[0-9]{1,12}",
        nonce in "[0-9a-zA-Z]{1,20}",
        other in "[0-9a-zA-Z]{1,20}",
    ) {
        let secrets = CallbackSecrets::parse(&secret).unwrap();
        let signature = zego::sign(&secret, &timestamp, &nonce);
        prop_assert!(secrets.verify(1, &timestamp, &nonce, &signature).is_ok());
        if other != nonce {
            prop_assert!(secrets.verify(1, &timestamp, &other, &signature).is_err());
        }
        let mut tampered = signature.into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        prop_assert!(secrets.verify(1, &timestamp, &nonce, &String::from_utf8(tampered).unwrap()).is_err());
    }

    #[test]
    fn a_signed_form_verifies_whatever_its_values(
        values in prop::collection::btree_map("[a-z_]{1,12}", ".{0,30}", 0..8),
    ) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &values {
            if !["event", "appid", "timestamp", "nonce", "signature"].contains(&key.as_str()) {
                form.append_pair(key, value);
            }
        }
        let signature = zego::sign("k", "1700000000", "a b+c%");
        form.append_pair("event", "room_close")
            .append_pair("appid", "9")
            .append_pair("timestamp", "1700000000")
            .append_pair("nonce", "a b+c%")
            .append_pair("signature", &signature);
        let body = form.finish();
        let decoded = RawCallback::decode(body.as_bytes(), Encoding::Form).unwrap();
        let common = CommonFields::read(&decoded.root).unwrap();
        prop_assert_eq!(common.nonce.as_ref(), "a b+c%");
        let secrets = CallbackSecrets::parse("k").unwrap();
        prop_assert!(common.verify(&secrets).is_ok());
    }
}
