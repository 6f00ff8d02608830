//! Decoding of a callback body (JSON or `application/x-www-form-urlencoded`) into a tree that
//! keeps every value exactly as it arrived.
//!
//! JSON scalars are kept as [`RawValue`]s rather than parsed into `serde_json::Value`, so that a
//! numeric `timestamp` or `nonce` is signed over its original text and a 64-bit id never passes
//! through an `f64`. Objects are parsed one level at a time so the normalizer can reach nested
//! fields (`AuxInfo.RoomId`) and still hand untouched sub-trees on verbatim.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// How a body was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Form,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Form => "form",
        }
    }
}

/// Why a body could not be decoded. Each message is shown to the caller in a 400 reply.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("body is empty")]
    Empty,
    #[error("body is not valid UTF-8")]
    NotUtf8,
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("JSON body must be an object, found {0}")]
    NotAnObject(&'static str),
    #[error("form field {0} is not valid UTF-8 once percent-decoded")]
    FormNotUtf8(String),
}

/// One value of a callback, as it arrived.
#[derive(Debug)]
pub enum Node<'a> {
    /// A JSON scalar or array, untouched.
    Json(&'a RawValue),
    /// A JSON object, with its entries parsed one level deep.
    Object(Object<'a>),
    /// A form value (always text on the wire).
    Text(Cow<'a, str>),
    /// A form key that appeared more than once (`k=a&k=b` or `k[]=a&k[]=b`).
    TextList(Vec<Cow<'a, str>>),
}

/// An object whose entries remember whether the normalizer consumed them, so that whatever it
/// did not recognise can be kept verbatim under `extra`.
#[derive(Debug)]
pub struct Object<'a> {
    raw: Option<&'a RawValue>,
    entries: Vec<Entry<'a>>,
}

#[derive(Debug)]
pub struct Entry<'a> {
    pub key: Cow<'a, str>,
    pub node: Node<'a>,
    used: Cell<bool>,
}

impl<'a> Entry<'a> {
    fn new(key: Cow<'a, str>, node: Node<'a>) -> Self {
        Entry {
            key,
            node,
            used: Cell::new(false),
        }
    }

    pub fn mark_used(&self) {
        self.used.set(true);
    }

    pub fn is_used(&self) -> bool {
        self.used.get()
    }
}

/// A scalar read from a [`Node`]: the text exactly as sent, and whether it was a JSON number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar<'a> {
    pub text: Cow<'a, str>,
    pub was_number: bool,
}

/// The value at a node is not a scalar (an object or array where text or a number was expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotScalar;

impl<'a> Node<'a> {
    /// The node as one scalar: `Ok(None)` for JSON `null`.
    pub fn scalar(&self) -> Result<Option<Scalar<'a>>, NotScalar> {
        match self {
            Node::Text(text) => Ok(Some(Scalar {
                text: text.clone(),
                was_number: false,
            })),
            Node::TextList(_) | Node::Object(_) => Err(NotScalar),
            Node::Json(raw) => json_scalar(raw),
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Node::Object(object) => Some(object),
            _ => None,
        }
    }
}

fn json_scalar<'a>(raw: &'a RawValue) -> Result<Option<Scalar<'a>>, NotScalar> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            // Borrow when the string has no escapes; allocate only when it does.
            let text = match serde_json::from_str::<&str>(text) {
                Ok(borrowed) => Cow::Borrowed(borrowed),
                Err(_) => Cow::Owned(serde_json::from_str::<String>(text).map_err(|_| NotScalar)?),
            };
            Ok(Some(Scalar {
                text,
                was_number: false,
            }))
        }
        Some(b'n') => Ok(None),
        Some(b't' | b'f') => Ok(Some(Scalar {
            text: Cow::Borrowed(text),
            was_number: false,
        })),
        Some(b'-' | b'0'..=b'9') => Ok(Some(Scalar {
            text: Cow::Borrowed(text),
            was_number: true,
        })),
        _ => Err(NotScalar),
    }
}

impl<'a> Object<'a> {
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// The original JSON text of this object, when it came from JSON.
    pub fn raw(&self) -> Option<&'a RawValue> {
        self.raw
    }

    /// The first entry whose key equals one of `names`, ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&Entry<'a>> {
        self.entries
            .iter()
            .find(|entry| entry.key.eq_ignore_ascii_case(name))
    }

    /// Follows a path of keys through nested objects, ignoring ASCII case at every step.
    pub fn get_path(&self, path: &[&str]) -> Option<&Entry<'a>> {
        let (first, rest) = path.split_first()?;
        let entry = self.get(first)?;
        if rest.is_empty() {
            return Some(entry);
        }
        entry.node.as_object()?.get_path(rest)
    }

    /// True when every entry, or every entry of every nested object, was consumed.
    pub fn fully_used(&self) -> bool {
        self.entries.iter().all(|entry| {
            entry.is_used()
                || entry
                    .node
                    .as_object()
                    .is_some_and(|object| !object.entries.is_empty() && object.fully_used())
        })
    }

    pub fn any_used(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.is_used() || entry.node.as_object().is_some_and(Object::any_used))
    }
}

/// A decoded callback body.
#[derive(Debug)]
pub struct RawCallback<'a> {
    pub encoding: Encoding,
    pub root: Object<'a>,
}

impl<'a> RawCallback<'a> {
    pub fn decode(body: &'a [u8], encoding: Encoding) -> Result<Self, DecodeError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::Empty);
        }
        let text = std::str::from_utf8(body).map_err(|_| DecodeError::NotUtf8)?;
        let root = match encoding {
            Encoding::Json => parse_json_object(text)?,
            Encoding::Form => parse_form(text)?,
        };
        Ok(RawCallback { encoding, root })
    }
}

/// Decides how to read a body whose Content-Type was missing or generic: a JSON object starts
/// with `{`; anything else is taken as a form.
pub fn sniff(body: &[u8]) -> Encoding {
    match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => Encoding::Json,
        _ => Encoding::Form,
    }
}

fn parse_json_object(text: &str) -> Result<Object<'_>, DecodeError> {
    let raw: &RawValue =
        serde_json::from_str(text).map_err(|err| DecodeError::InvalidJson(err.to_string()))?;
    // Raw values skip the range check of numbers, and parts of the body are published
    // verbatim: a number such as `1e999` would make an event its consumers cannot parse.
    // Walking it once with number parsing on refuses it here, with a clear 400. (Skipping the
    // walk for bodies whose text shows no exponent was tried: the scan cost more than the walk
    // it saved, `zego-bridge-bench hot-path`.)
    serde_json::from_str::<Parsable>(text)
        .map_err(|err| DecodeError::InvalidJson(err.to_string()))?;
    match raw.get().as_bytes().first() {
        Some(b'{') => object_from_raw(raw).map_err(|err| DecodeError::InvalidJson(err.to_string())),
        Some(b'[') => Err(DecodeError::NotAnObject("an array")),
        Some(b'"') => Err(DecodeError::NotAnObject("a string")),
        _ => Err(DecodeError::NotAnObject("a scalar")),
    }
}

fn object_from_raw(raw: &RawValue) -> Result<Object<'_>, serde_json::Error> {
    let RawEntries(pairs) = serde_json::from_str(raw.get())?;
    let mut entries = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let node = if value.get().starts_with('{') {
            Node::Object(object_from_raw(value)?)
        } else {
            Node::Json(value)
        };
        entries.push(Entry::new(key, node));
    }
    Ok(Object {
        raw: Some(raw),
        entries,
    })
}

/// Objects up to this many keys look for a repeated key by scanning the keys kept so far.
const SCAN_FOR_REPEATS_UP_TO: usize = 32;

/// The entries of one JSON object in document order, keys borrowed where they have no escapes.
/// A key that repeats keeps its first value (later ones are dropped by design: JSON leaves
/// duplicates undefined, and the signature fields must not be overridable by a second copy).
struct RawEntries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawEntries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = RawEntries<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(16));
                // Up to a few dozen keys (every real callback), a scan of those kept finds a
                // repeat fastest; past that, a set of the keys seen, so that a body of many keys
                // costs linear time before its signature is checked, not quadratic.
                let mut seen: Option<HashSet<Cow<'de, str>>> = None;
                while let Some(BorrowedKey(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    let repeated = match &mut seen {
                        Some(seen) => !seen.insert(key.clone()),
                        None if entries.len() < SCAN_FOR_REPEATS_UP_TO => {
                            entries.iter().any(|(kept, _)| *kept == key)
                        }
                        None => {
                            let set =
                                seen.insert(entries.iter().map(|(kept, _)| kept.clone()).collect());
                            !set.insert(key.clone())
                        }
                    };
                    if !repeated {
                        entries.push((key, value));
                    }
                }
                Ok(RawEntries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Any JSON value, walked but not built: numbers are parsed (so one out of range fails, as it
/// would for a consumer) without allocating anything.
struct Parsable;

impl<'de> Deserialize<'de> for Parsable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ParsableVisitor)
    }
}

struct ParsableVisitor;

impl<'de> Visitor<'de> for ParsableVisitor {
    type Value = Parsable;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Parsable, E> {
        Ok(Parsable)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Parsable, E> {
        Ok(Parsable)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Parsable, E> {
        Ok(Parsable)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Parsable, E> {
        Ok(Parsable)
    }

    fn visit_str<E>(self, _: &str) -> Result<Parsable, E> {
        Ok(Parsable)
    }

    fn visit_unit<E>(self) -> Result<Parsable, E> {
        Ok(Parsable)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Parsable, A::Error> {
        while seq.next_element::<Parsable>()?.is_some() {}
        Ok(Parsable)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsable, A::Error> {
        while map.next_entry::<Parsable, Parsable>()?.is_some() {}
        Ok(Parsable)
    }
}

struct BorrowedKey<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for BorrowedKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wrapper<'a>(#[serde(borrow)] Cow<'a, str>);
        Wrapper::deserialize(deserializer).map(|Wrapper(key)| BorrowedKey(key))
    }
}

/// `application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte, and the bytes of each key
/// and value must be UTF-8 (a value that is not is refused, never replaced with U+FFFD). A key
/// that repeats makes a list, in linear time.
fn parse_form(text: &str) -> Result<Object<'_>, DecodeError> {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut index: HashMap<Cow<'_, str>, usize> = HashMap::new();
    for pair in text.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_decode(key).map_err(|_| DecodeError::FormNotUtf8("name".to_owned()))?;
        let value = form_decode(value).map_err(|_| DecodeError::FormNotUtf8(format!("`{key}`")))?;
        // PHP-style array keys (`rtmp_url[]`, `rtmp_url[0]`) name the same field as `rtmp_url`.
        let key = match key.find('[') {
            Some(bracket) if key.ends_with(']') => Cow::Owned(key[..bracket].to_owned()),
            _ => key,
        };
        match index.get(&key) {
            Some(&position) => {
                let entry = &mut entries[position];
                let previous = std::mem::replace(&mut entry.node, Node::TextList(Vec::new()));
                entry.node = match previous {
                    Node::Text(first) => Node::TextList(vec![first, value]),
                    Node::TextList(mut items) => {
                        items.push(value);
                        Node::TextList(items)
                    }
                    other => other,
                };
            }
            None => {
                index.insert(key.clone(), entries.len());
                entries.push(Entry::new(key, Node::Text(value)));
            }
        }
    }
    Ok(Object { raw: None, entries })
}

/// One percent-encoded form component, borrowed when it holds no escape.
fn form_decode(component: &str) -> Result<Cow<'_, str>, DecodeError> {
    if !component.contains(['%', '+']) {
        return Ok(Cow::Borrowed(component));
    }
    let spaced = component.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| DecodeError::FormNotUtf8(String::new()))?;
    Ok(Cow::Owned(decoded.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fastest of five decodes of `body`, in nanoseconds.
    fn decode_time(body: &[u8], encoding: Encoding) -> u128 {
        (0..5)
            .map(|_| {
                let started = std::time::Instant::now();
                let callback = RawCallback::decode(body, encoding).unwrap();
                std::hint::black_box(&callback);
                started.elapsed().as_nanos()
            })
            .min()
            .unwrap()
    }

    /// Nothing before the signature check may cost more than linear time: 64 KB of about 9,000
    /// distinct keys once took 400 times as long as 64 KB in one value (a quadratic duplicate
    /// check), and four clients sending such bodies starved every valid callback.
    #[test]
    fn many_keys_cost_linear_time() {
        let keys = 9_000;
        let form: String = (0..keys).map(|n| format!("k{n}=v&")).collect();
        let one_value = format!("k={}", "v".repeat(form.len() - 2));
        let json = format!(
            "{{{}\"last\":1}}",
            (0..keys)
                .map(|n| format!("\"k{n}\":1,"))
                .collect::<String>()
        );
        let one_json = format!("{{\"k\":\"{}\"}}", "v".repeat(json.len() - 8));
        for (many, one, encoding) in [
            (form.as_bytes(), one_value.as_bytes(), Encoding::Form),
            (json.as_bytes(), one_json.as_bytes(), Encoding::Json),
        ] {
            let (many_ns, one_ns) = (decode_time(many, encoding), decode_time(one, encoding));
            assert!(
                many_ns < one_ns.max(20_000) * 60,
                "{encoding:?}: {keys} keys took {many_ns} ns, one value {one_ns} ns"
            );
        }
    }

    #[test]
    fn a_form_value_that_is_not_utf8_once_decoded_is_refused() {
        for body in [
            &b"event=x&room_id=%FF%FE"[..],
            b"event=x&%C3=1",
            b"event=%E2%82",
        ] {
            assert!(
                matches!(
                    RawCallback::decode(body, Encoding::Form),
                    Err(DecodeError::FormNotUtf8(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let decoded = RawCallback::decode(b"a=%E2%82%AC+1&b=x%2By", Encoding::Form).unwrap();
        assert_eq!(
            text(&decoded.root.get("a").unwrap().node).unwrap(),
            "\u{20ac} 1"
        );
        assert_eq!(text(&decoded.root.get("b").unwrap().node).unwrap(), "x+y");
    }

    fn text(node: &Node<'_>) -> Option<String> {
        node.scalar()
            .unwrap()
            .map(|scalar| scalar.text.into_owned())
    }

    #[test]
    fn json_numbers_keep_their_exact_text() {
        let body = br#"{"nonce": 18446744073709551615, "timestamp": 1499676978, "f": 1.50}"#;
        let callback = RawCallback::decode(body, Encoding::Json).unwrap();
        let nonce = callback
            .root
            .get("nonce")
            .unwrap()
            .node
            .scalar()
            .unwrap()
            .unwrap();
        assert_eq!(nonce.text, "18446744073709551615");
        assert!(nonce.was_number);
        assert_eq!(text(&callback.root.get("f").unwrap().node).unwrap(), "1.50");
    }

    #[test]
    fn json_strings_are_unescaped_and_null_is_absent() {
        let body = br#"{"a": "x\"y\u00e9", "b": null, "c": true}"#;
        let callback = RawCallback::decode(body, Encoding::Json).unwrap();
        assert_eq!(
            text(&callback.root.get("a").unwrap().node).unwrap(),
            "x\"y\u{e9}"
        );
        assert_eq!(text(&callback.root.get("b").unwrap().node), None);
        assert_eq!(text(&callback.root.get("c").unwrap().node).unwrap(), "true");
    }

    #[test]
    fn lookups_ignore_ascii_case_and_follow_paths() {
        let body = br#"{"Event": "x", "AuxInfo": {"RoomId": "r1"}}"#;
        let callback = RawCallback::decode(body, Encoding::Json).unwrap();
        assert!(callback.root.get("event").is_some());
        let room = callback.root.get_path(&["auxinfo", "roomid"]).unwrap();
        assert_eq!(text(&room.node).unwrap(), "r1");
    }

    #[test]
    fn a_repeated_json_key_keeps_its_first_value() {
        let body = br#"{"signature": "first", "signature": "second"}"#;
        let callback = RawCallback::decode(body, Encoding::Json).unwrap();
        assert_eq!(callback.root.entries().len(), 1);
        assert_eq!(
            text(&callback.root.get("signature").unwrap().node).unwrap(),
            "first"
        );
    }

    #[test]
    fn form_values_are_percent_decoded_and_repeated_keys_become_lists() {
        let body = b"room_name=room%23123&a=1+2&url[]=x&url[]=y";
        let callback = RawCallback::decode(body, Encoding::Form).unwrap();
        assert_eq!(
            text(&callback.root.get("room_name").unwrap().node).unwrap(),
            "room#123"
        );
        assert_eq!(text(&callback.root.get("a").unwrap().node).unwrap(), "1 2");
        match &callback.root.get("url").unwrap().node {
            Node::TextList(items) => assert_eq!(items, &["x", "y"]),
            other => panic!("expected a list, got {other:?}"),
        }
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused() {
        assert_eq!(
            RawCallback::decode(b"  ", Encoding::Json).unwrap_err(),
            DecodeError::Empty
        );
        assert_eq!(
            RawCallback::decode(b"[1]", Encoding::Json).unwrap_err(),
            DecodeError::NotAnObject("an array")
        );
        assert!(matches!(
            RawCallback::decode(b"{\"a\":", Encoding::Json).unwrap_err(),
            DecodeError::InvalidJson(_)
        ));
        assert_eq!(
            RawCallback::decode(&[0xff, 0xfe], Encoding::Form).unwrap_err(),
            DecodeError::NotUtf8
        );
    }

    #[test]
    fn numbers_out_of_range_are_refused_since_parts_are_published_verbatim() {
        // Found by the fuzzer: accepted by the raw parser, unreadable for consumers.
        let err = RawCallback::decode(br#"{"event":"x","Detail":{"n":1e999}}"#, Encoding::Json)
            .unwrap_err();
        assert!(
            matches!(&err, DecodeError::InvalidJson(message) if message.contains("out of range")),
            "{err}"
        );
        // Big but finite numbers are fine, including integers beyond u64.
        assert!(
            RawCallback::decode(br#"{"a":1e300,"b":18446744073709551616}"#, Encoding::Json).is_ok()
        );
    }

    #[test]
    fn the_range_check_refuses_exactly_what_a_full_parse_refuses() {
        let deep = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        for body in [
            r#"{"a":1e999}"#.to_owned(),
            r#"{"a":-1e999}"#.to_owned(),
            r#"{"a":1e308,"b":18446744073709551616,"c":-9223372036854775809}"#.to_owned(),
            r#"{"a":[1,{"b":null,"c":"\u00e9\n"}],"a":true}"#.to_owned(),
            format!(r#"{{"a":{}}}"#, deep(100)),
            format!(r#"{{"a":{}}}"#, deep(200)),
        ] {
            assert_eq!(
                serde_json::from_str::<Parsable>(&body).is_ok(),
                serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                "{body}"
            );
        }
    }

    #[test]
    fn sniffing_looks_at_the_first_non_blank_byte() {
        assert_eq!(sniff(b"\n {\"a\":1}"), Encoding::Json);
        assert_eq!(sniff(b"event=room_close"), Encoding::Form);
    }
}
