//! Property tests of the code that faces the network: body decoding, the common keys, the
//! signature and normalization. The same code is fuzzed by `fuzz/` (see the README); these
//! run in CI.

use proptest::prelude::*;
use zego_kafka_bridge::event::{catalog, normalize, EventType};
use zego_kafka_bridge::zego::{
    self, classify, sniff, CallbackSecrets, CommonFields, Encoding, Product, RawCallback,
};

/// Whatever the bytes, decoding and normalizing return (never panic), and an event that comes
/// out serializes to a JSON object.
fn decode_and_normalize(body: &[u8]) {
    for encoding in [Encoding::Json, Encoding::Form, sniff(body)] {
        let Ok(callback) = RawCallback::decode(body, encoding) else {
            continue;
        };
        let product = classify(&callback.root).unwrap_or(Product::Rtc);
        let Ok(common) = CommonFields::read_for(&callback.root, product) else {
            continue;
        };
        let event = normalize(&callback, &common, product, 0);
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
        let event = normalize(&decoded, &common, zego_kafka_bridge::zego::Product::Rtc, 0);
        // Every key of the callback is somewhere: a declared field, the envelope, or `extra`.
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        prop_assert_eq!(json["schema_version"].as_u64(), Some(1));
        prop_assert!(json["extra"].is_object());
    }

    #[test]
    fn what_is_signed_verifies_and_any_change_does_not(
        // A secret is printable ASCII without the list's own separators (`,` between entries,
        // `=` after an app id) and without edge blanks, which the parser trims away; a value
        // that starts with `{` is the JSON form.
        secret in "[!-~&&[^,={]]([ -~&&[^,=]]{0,38}[!-~&&[^,=]])?",
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

/// The event id of a JSON or form body posted to the path of `path`, read as the pipeline
/// does: as the product the body names, else as its path's.
fn event_id(path: Product, body: &str, encoding: Encoding) -> uuid::Uuid {
    identify(path, body, encoding).0
}

/// The event id, and whether it covers the signing envelope (the body does not name the
/// occurrence, by its type's identity in the catalog).
fn identify(path: Product, body: &str, encoding: Encoding) -> (uuid::Uuid, bool) {
    let decoded = RawCallback::decode(body.as_bytes(), encoding).expect("decodes");
    let product = classify(&decoded.root).unwrap_or(path);
    let common = CommonFields::read_for(&decoded.root, product).expect("common fields");
    let event = normalize(&decoded, &common, product, 0);
    (event.id, event.kind.identity.covers_envelope(&decoded.root))
}

/// The keys that say which product and event a callback is, as each product sends them.
const DISCRIMINATORS: &[&str] = &[
    "event",
    "appid",
    "Event",
    "AppId",
    "AppID",
    "EventType",
    "event_type",
    "app_id",
];

/// The event name and app of a callback of `kind`, in its product's keys, with the key that
/// tells the product apart from one that shares its event names (PRODUCTS.md §11.2).
fn envelope(kind: &EventType) -> Vec<(&'static str, serde_json::Value)> {
    let event = kind.zego_events.first().copied().unwrap_or("something_new");
    let number = || serde_json::Value::from(event.parse::<u64>().unwrap_or(99_999));
    match kind.product {
        Product::Rtc | Product::SuperBoard | Product::MiniGame => {
            vec![("event", event.into()), ("appid", 7.into())]
        }
        // ZIM's `room_create` is told from RTC's by its creator.
        Product::Zim if event == "room_create" => vec![
            ("event", event.into()),
            ("appid", "7".into()),
            ("operator_account", "u".into()),
        ],
        Product::Zim => vec![("event", event.into()), ("appid", "7".into())],
        // The legacy end-of-recording callback has its files at the top.
        Product::CloudRecording if kind.name == "cloud_recording.ended_legacy" => vec![
            ("event_type", 1.into()),
            ("app_id", 7.into()),
            ("file_info", "".into()),
        ],
        Product::CloudRecording => vec![("event_type", 1.into()), ("app_id", 7.into())],
        Product::AiAgent => vec![
            ("Event", event.into()),
            ("AppId", 7.into()),
            ("AgentInstanceId", "1912124734317838336".into()),
        ],
        Product::Asr => vec![
            ("Event", event.into()),
            ("AppId", 7.into()),
            ("TaskId", "t".into()),
        ],
        Product::DigitalHuman => vec![
            ("EventType", number()),
            ("AppId", 7.into()),
            ("TaskId", "t".into()),
        ],
        Product::CloudPlayer => vec![("EventType", number()), ("AppID", 7.into())],
    }
}

/// Top-level keys a type reads its fields from, and keys no type knows.
fn keys_of(kind: &'static EventType) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = kind
        .fields
        .iter()
        .flat_map(|field| field.sources)
        .filter(|source| source.path.len() == 1)
        .map(|source| source.path[0])
        .collect();
    keys.extend(["unknown_key", "Another_Unknown", "x"]);
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A flat value, as JSON: text (often digits, or one of a type's codes), a number, a flag.
fn flat_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        ".{0,12}".prop_map(serde_json::Value::from),
        (0u64..2000).prop_map(|n| serde_json::Value::from(n.to_string())),
        (0u64..2000).prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "(19|20)[0-9]{2}-0[1-9]-1[0-9] 0[0-9]:[0-5][0-9]:[0-5][0-9]"
            .prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ]
}

/// A flat callback of any catalogued type of any product (or an unknown one) with a random
/// choice of that type's own keys and unknown ones, as a JSON object without the signing
/// envelope.
fn flat_callback() -> impl Strategy<Value = (Product, serde_json::Map<String, serde_json::Value>)> {
    let kinds: Vec<&'static EventType> = catalog::ALL.to_vec();
    prop::sample::select(kinds).prop_flat_map(|kind| {
        let keys: Vec<&'static str> = keys_of(kind)
            .into_iter()
            .filter(|key| !DISCRIMINATORS.contains(key))
            .collect();
        prop::collection::btree_map(prop::sample::select(keys), flat_value(), 1..10).prop_map(
            move |fields| {
                let mut object: serde_json::Map<String, serde_json::Value> = fields
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect();
                for (key, value) in envelope(kind) {
                    object.insert(key.into(), value);
                }
                (kind.product, object)
            },
        )
    })
}

/// The callback as ZEGO would send it once: with this delivery's timestamp, nonce and signature.
fn delivered(
    object: &serde_json::Map<String, serde_json::Value>,
    timestamp: u32,
    nonce: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut object = object.clone();
    object.insert("timestamp".into(), timestamp.to_string().into());
    object.insert("nonce".into(), nonce.into());
    object.insert(
        "signature".into(),
        zego::sign("k", &timestamp.to_string(), nonce).into(),
    );
    object
}

fn as_form(object: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (key, value) in object {
        match value {
            serde_json::Value::String(text) => form.append_pair(key, text),
            other => form.append_pair(key, &other.to_string()),
        };
    }
    form.finish()
}

/// Numbers as their digits and digit strings as numbers: how senders differ in form.
fn swap_numbers_and_digits(object: &mut serde_json::Map<String, serde_json::Value>) {
    for (key, value) in object.iter_mut() {
        if ["timestamp", "nonce", "signature"].contains(&key.as_str())
            || DISCRIMINATORS.contains(&key.as_str())
        {
            continue;
        }
        *value = match &*value {
            serde_json::Value::Number(number) => serde_json::Value::from(number.to_string()),
            serde_json::Value::String(text) => match text.parse::<u64>() {
                Ok(number) if number.to_string() == *text => serde_json::Value::from(number),
                _ => value.clone(),
            },
            other => other.clone(),
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// One delivery sent again, as a form, or with numbers as digits and digits as numbers:
    /// one event, one id. Signed afresh (a new timestamp and nonce), it keeps its id exactly
    /// when its body names the occurrence (docs/events.md, "Event identity").
    #[test]
    fn the_id_is_the_same_for_every_delivery_and_spelling_of_one_callback(
        (path, callback) in flat_callback(),
        first in 1_600_000_000u32..1_900_000_000,
        second in 1_600_000_000u32..1_900_000_000,
        nonce in "[0-9a-z]{1,12}",
    ) {
        let original = delivered(&callback, first, "n0");
        let (id, covers_envelope) =
            identify(path, &serde_json::Value::Object(original.clone()).to_string(), Encoding::Json);
        prop_assert_eq!(id, event_id(path, &as_form(&original), Encoding::Form), "as a form");
        let mut swapped = original;
        swap_numbers_and_digits(&mut swapped);
        prop_assert_eq!(id, event_id(path, &serde_json::Value::Object(swapped).to_string(), Encoding::Json), "numbers as digits");
        let resigned = delivered(&callback, second, &nonce);
        let resigned_id =
            event_id(path, &serde_json::Value::Object(resigned).to_string(), Encoding::Json);
        if covers_envelope {
            prop_assert_ne!(id, resigned_id, "signed afresh, the body naming nothing");
        } else {
            prop_assert_eq!(id, resigned_id, "signed afresh, the body naming it");
        }
    }

    /// Two callbacks that differ in any business field (one value changed, one key added or
    /// removed) never share an id, so the second is never dropped as a retry of the first.
    #[test]
    fn callbacks_that_differ_in_any_business_field_get_different_ids(
        (path, callback) in flat_callback(),
        pick in any::<prop::sample::Index>(),
        change in 0..3u8,
    ) {
        let original = delivered(&callback, 1_700_000_000, "n");
        let id = event_id(path, &serde_json::Value::Object(original.clone()).to_string(), Encoding::Json);
        let business: Vec<String> = callback
            .keys()
            .filter(|key| !DISCRIMINATORS.contains(&key.as_str()))
            .cloned()
            .collect();
        let mut changed = original;
        match change {
            0 if !business.is_empty() => {
                let key = pick.get(&business);
                let text = match &changed[key] {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                changed.insert(key.clone(), format!("{text}#").into());
            }
            1 if !business.is_empty() => {
                changed.remove(pick.get(&business));
            }
            _ => {
                changed.insert("added_by_the_test".into(), "1".into());
            }
        }
        prop_assert_ne!(id, event_id(path, &serde_json::Value::Object(changed).to_string(), Encoding::Json));
    }
}

/// Walks segment bytes as the spool's reader does; returns the records' bodies.
fn spool_records(bytes: &[u8]) -> Vec<Vec<u8>> {
    use zego_kafka_bridge::spool::log::{parse, Parsed};
    let mut at = 0;
    let mut records = Vec::new();
    loop {
        match parse(bytes, at) {
            Parsed::Record { start, end } => {
                assert_eq!(start, at);
                records.push(bytes[start + 8..end].to_vec());
                at = end;
            }
            Parsed::Damaged { start, end, .. } => {
                assert_eq!(start, at);
                assert!(end > start && end <= bytes.len());
                at = end;
            }
            Parsed::Incomplete { .. } | Parsed::End => return records,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes as a spool segment: the reader ends, accounting for every byte in order.
    #[test]
    fn any_spool_bytes_are_read_to_the_end(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        spool_records(&bytes);
    }

    /// Records with a burst of damage (overwritten with random bytes) anywhere: every record
    /// the burst did not touch is still read, in order.
    #[test]
    fn a_burst_of_damage_spares_every_record_it_does_not_touch(
        count in 1usize..12,
        burst_at in any::<prop::sample::Index>(),
        burst in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        for n in 0..count {
            let body = format!(r#"{{"event_id":"{n}","pad":"{}"}}"#, "p".repeat(n * 3));
            let start = bytes.len();
            zego_kafka_bridge::spool::log::frame(body.as_bytes(), &mut bytes);
            spans.push((start, bytes.len(), body.into_bytes()));
        }
        let start = burst_at.index(bytes.len());
        let end = (start + burst.len()).min(bytes.len());
        bytes[start..end].copy_from_slice(&burst[..end - start]);
        let read = spool_records(&bytes);
        let intact: Vec<&Vec<u8>> = spans
            .iter()
            .filter(|(s, e, _)| *e <= start || *s >= end)
            .map(|(_, _, body)| body)
            .collect();
        // A burst can only remove records; it cannot forge one (CRC-32 and framing).
        for body in &intact {
            prop_assert!(read.contains(body), "lost an intact record");
        }
        prop_assert!(read.len() <= count);
    }
}

/// The callbacks the id properties draw reach every product's types, not RTC's alone: each
/// envelope is read as its own product and type.
#[test]
fn the_drawn_callbacks_reach_every_type_of_every_product() {
    for kind in catalog::ALL.iter() {
        let object: serde_json::Map<String, serde_json::Value> = envelope(kind)
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        let body = serde_json::Value::Object(delivered(&object, 1_700_000_000, "n")).to_string();
        let decoded = RawCallback::decode(body.as_bytes(), Encoding::Json).unwrap();
        let product = classify(&decoded.root).unwrap_or(kind.product);
        let common = CommonFields::read_for(&decoded.root, product).unwrap();
        let event = normalize(&decoded, &common, product, 0);
        assert_eq!(event.kind.name, kind.name, "{body}");
    }
}

proptest! {
    /// The decoder keeps numbers as raw text and checks their range in a walk of its own: it
    /// refuses exactly what a full parse refuses, whatever numbers and strings (with escapes,
    /// quotes, digits and `e`s) the body holds.
    #[test]
    fn decoding_refuses_exactly_the_numbers_a_full_parse_refuses(
        entries in prop::collection::vec(
            (
                "[a-z\"\\\\e0-9]{0,6}",
                prop_oneof![
                    "-?[0-9]{1,3}(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,4})?",
                    "[0-9]{290,320}",
                    "\"([a-z0-9eE.]|\\\\\"|\\\\\\\\){0,12}\"",
                    Just("[1e400, \"x\"]".to_owned()),
                ],
            ),
            1..6,
        ),
    ) {
        let body = format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(key, value)| format!("{}:{value}", serde_json::Value::from(key.as_str())))
                .collect::<Vec<_>>()
                .join(",")
        );
        let full = serde_json::from_str::<serde_json::Value>(&body).is_ok();
        prop_assert_eq!(RawCallback::decode(body.as_bytes(), Encoding::Json).is_ok(), full, "{}", body);
    }
}
