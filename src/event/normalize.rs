//! Turns a decoded, verified callback into an [`Event`] by following the catalog.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::catalog::{self, EventType, Field, FieldKind, KeyRule, Source};
use super::{Event, FieldValue, Value};
use serde_json::value::RawValue;

use crate::zego::{
    CommonFields, Node, Object, Product, RawCallback, NONCE_KEYS, SIGNATURE_KEYS, TIMESTAMP_KEYS,
};

/// Namespace of the UUIDv5 event ids. Changing it changes every id: never do.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5a1e_90c4_7b2d_4f0e_9c3a_26d8_e1b4_f702);

/// Builds the event for a callback of `product` whose common fields were read (and consumed)
/// already.
pub fn normalize<'a>(
    callback: &RawCallback<'a>,
    common: &CommonFields<'a>,
    product: Product,
    received_at_ms: i64,
) -> Event<'a> {
    let (kind, canonical_name) = catalog::resolve(product, &common.event);
    // Matching trims and ignores case; what is published must be the name the schema expects.
    let zego_event = match canonical_name {
        Some(name) => Cow::Borrowed(name),
        None if common.event.trim() == common.event.as_ref()
            && !common.event.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            common.event.clone()
        }
        None => Cow::Owned(common.event.trim().to_ascii_lowercase()),
    };
    let root = &callback.root;
    let mut coercion_failures = Vec::new();
    let fields: Vec<FieldValue<'a>> = kind
        .fields
        .iter()
        .map(|field| {
            let (value, failed) = read_field(root, field);
            if failed {
                coercion_failures.push(field.name);
            }
            FieldValue { field, value }
        })
        .collect();
    let extra = collect_extra(root);

    let mut event = Event {
        id: Uuid::nil(),
        kind,
        zego_event,
        app_id: common.app_id,
        sent_at_ms: common.sent_at_ms,
        received_at_ms,
        occurred_at_ms: None,
        fields,
        extra,
        partition_key: None,
        coercion_failures,
    };
    event.occurred_at_ms = kind
        .occurred_at
        .and_then(|name| event.get(name))
        .and_then(Value::as_int);
    event.partition_key = partition_key(&event, root);
    event.id = event_id(kind, root, common);
    event
}

/// Reads a declared field from the first alias present. An alias that disagrees with the chosen
/// value, or whose value has the wrong form, stays unconsumed and so lands under `extra`.
fn read_field<'a>(root: &Object<'a>, field: &'static Field) -> (Value<'a>, bool) {
    let mut chosen: Option<Value<'a>> = None;
    let mut failed = false;
    for source in field.sources {
        let Some(entry) = root.get_path(source.path) else {
            continue;
        };
        match convert(&entry.node, field.kind, *source) {
            Ok(None) => entry.mark_used(),
            Ok(Some(value)) => match &chosen {
                None => {
                    entry.mark_used();
                    chosen = Some(value);
                }
                Some(existing) if *existing == value => entry.mark_used(),
                Some(_) => {}
            },
            Err(Unconvertible) => failed = true,
        }
    }
    (chosen.unwrap_or(Value::Null), failed)
}

#[derive(Debug)]
struct Unconvertible;

/// Converts one value to the field's kind. `Ok(None)` means "no value" (null or empty).
fn convert<'a>(
    node: &Node<'a>,
    kind: FieldKind,
    source: Source,
) -> Result<Option<Value<'a>>, Unconvertible> {
    match kind {
        FieldKind::Str => Ok(scalar_text(node)?.map(Value::Str)),
        FieldKind::JsonText => match node {
            Node::Json(raw) if raw.get().starts_with('[') => {
                Ok(Some(Value::Str(Cow::Borrowed(raw.get()))))
            }
            Node::Object(object) => {
                Ok(object.raw().map(|raw| Value::Str(Cow::Borrowed(raw.get()))))
            }
            _ => Ok(scalar_text(node)?.map(Value::Str)),
        },
        FieldKind::Token => Ok(non_empty(scalar_text(node)?).map(|text| {
            Value::Str(match text {
                Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
                Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
            })
        })),
        FieldKind::Int | FieldKind::TimeMs | FieldKind::Enum(_) => {
            let Some(text) = non_empty(scalar_text(node)?) else {
                return Ok(None);
            };
            let value = text.trim().parse::<i64>().map_err(|_| Unconvertible)?;
            let value = source.unit.to_millis(value).ok_or(Unconvertible)?;
            Ok(Some(Value::Int(value)))
        }
        FieldKind::Id64 => {
            let Some(text) = non_empty(scalar_text(node)?) else {
                return Ok(None);
            };
            let value = text.trim().parse::<u64>().map_err(|_| Unconvertible)?;
            Ok(Some(Value::Str(Cow::Owned(value.to_string()))))
        }
        FieldKind::Flag => {
            let Some(text) = non_empty(scalar_text(node)?) else {
                return Ok(None);
            };
            match text.trim() {
                "0" | "false" => Ok(Some(Value::Bool(false))),
                "1" | "true" => Ok(Some(Value::Bool(true))),
                _ => Err(Unconvertible),
            }
        }
        FieldKind::StrList => string_list(node),
        FieldKind::Json => Ok(match node {
            Node::Json(raw) if raw.get() == "null" => None,
            Node::Json(raw) => Some(Value::Raw(raw)),
            Node::Object(object) => object.raw().map(Value::Raw),
            Node::Text(text) => Some(Value::Str(text.clone())),
            Node::TextList(items) => Some(Value::StrList(items.clone())),
        }),
        FieldKind::BeijingTime => {
            let Some(text) = non_empty(scalar_text(node)?) else {
                return Ok(None);
            };
            let local = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f")
                .map_err(|_| Unconvertible)?;
            const BEIJING_OFFSET_MS: i64 = 8 * 3600 * 1000;
            Ok(Some(Value::Int(
                local.and_utc().timestamp_millis() - BEIJING_OFFSET_MS,
            )))
        }
    }
}

fn scalar_text<'a>(node: &Node<'a>) -> Result<Option<Cow<'a, str>>, Unconvertible> {
    node.scalar()
        .map(|scalar| scalar.map(|scalar| scalar.text))
        .map_err(|_| Unconvertible)
}

fn non_empty(text: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    text.filter(|text| !text.trim().is_empty())
}

fn string_list<'a>(node: &Node<'a>) -> Result<Option<Value<'a>>, Unconvertible> {
    match node {
        Node::TextList(items) => Ok(Some(Value::StrList(items.clone()))),
        Node::Text(text) if text.is_empty() => Ok(None),
        Node::Text(text) => Ok(Some(Value::StrList(vec![text.clone()]))),
        Node::Object(_) => Err(Unconvertible),
        Node::Json(raw) => match raw.get().as_bytes().first() {
            Some(b'[') => serde_json::from_str::<Vec<Cow<'a, str>>>(raw.get())
                .map(|items| Some(Value::StrList(items)))
                .map_err(|_| Unconvertible),
            Some(b'n') => Ok(None),
            Some(b'"') => Ok(scalar_text(node)?.map(|text| Value::StrList(vec![text]))),
            _ => Err(Unconvertible),
        },
    }
}

/// Everything in `object` that no field consumed, keeping the original keys and nesting.
fn collect_extra<'a>(object: &Object<'a>) -> Vec<(Cow<'a, str>, Value<'a>)> {
    let mut extra = Vec::new();
    for entry in object.entries() {
        if entry.is_used() {
            continue;
        }
        let value = match &entry.node {
            Node::Object(child) if child.any_used() => {
                let rest = collect_extra(child);
                if rest.is_empty() {
                    continue;
                }
                Value::Object(rest)
            }
            Node::Object(child) => match child.raw() {
                Some(raw) => Value::Raw(raw),
                None => Value::Object(collect_extra(child)),
            },
            Node::Json(raw) => Value::Raw(raw),
            Node::Text(text) => Value::Str(text.clone()),
            Node::TextList(items) => Value::StrList(items.clone()),
        };
        extra.push((entry.key.clone(), value));
    }
    extra
}

fn partition_key<'a>(event: &Event<'a>, root: &Object<'a>) -> Option<Cow<'a, str>> {
    let text = |name: &str| match event.get(name) {
        Some(Value::Str(text)) if !text.is_empty() => Some(text.clone()),
        _ => None,
    };
    match event.kind.key {
        KeyRule::FirstOf(names) => names.iter().find_map(|name| text(name)),
        KeyRule::Conversation => conversation_key(
            event.get("conv_type").and_then(Value::as_int),
            text("conv_id"),
            text("from_user_id"),
        ),
        KeyRule::Body(paths) => paths.iter().find_map(|path| {
            let scalar = root.get_path(path)?.node.scalar().ok()??;
            (!scalar.text.is_empty()).then_some(scalar.text)
        }),
    }
}

/// A ZIM conversation's key. A one-to-one conversation is seen from both ends (A sends to
/// `conv_id` B, B to `conv_id` A): both users, in a fixed order, make one key for both
/// directions. A batch send through the server API names no `conv_id`: the sender's key.
fn conversation_key<'a>(
    conv_type: Option<i64>,
    conv_id: Option<Cow<'a, str>>,
    from: Option<Cow<'a, str>>,
) -> Option<Cow<'a, str>> {
    const ONE_TO_ONE: i64 = 0;
    match (conv_type, conv_id, from) {
        (Some(ONE_TO_ONE), Some(peer), Some(from)) => {
            let (first, second) = if peer <= from {
                (peer, from)
            } else {
                (from, peer)
            };
            Some(Cow::Owned(format!("0:{first}:{second}")))
        }
        (Some(ONE_TO_ONE), None, Some(from)) => Some(Cow::Owned(format!("0:{from}"))),
        (Some(conv_type), Some(conv_id), _) => Some(Cow::Owned(format!("{conv_type}:{conv_id}"))),
        (None, Some(conv_id), _) => Some(conv_id),
        (_, None, from) => from,
    }
}

/// The event id: a UUIDv5 of the type and everything the callback says, in a canonical form
/// that keeps every value (each copy of a repeated key, every level of nested lists). It is read
/// from the callback as sent, not from the event, so that no lossy step of normalization can
/// make two callbacks one. The signing envelope is left out or kept by the type's
/// [`Identity`](catalog::Identity): out where the body names one occurrence (a retry signed
/// afresh keeps its id), in where it does not (ZIM's `room_enter` differs from the next entry
/// only by `timestamp`), so that a duplicate is possible, a merge is not. `signature` is never
/// part of it: it follows from `timestamp`, `nonce` and the secret, and a rotated secret does
/// not make a callback another. The same callback with a number instead of its digits, or sent
/// as a form instead of JSON, gets the same id.
fn event_id(kind: &EventType, root: &Object<'_>, common: &CommonFields<'_>) -> Uuid {
    let mut canonical = Canonical(Vec::with_capacity(512));
    canonical.text(kind.name);
    canonical.object(root, true);
    if kind.identity.covers_envelope(root) {
        canonical.0.push(b'e');
        canonical.text(&common.timestamp_text);
        canonical.text(&common.nonce);
    }
    uuid_v5(&EVENT_ID_NAMESPACE, &canonical.0)
}

/// RFC 9562's name-based UUID (version 5), as `Uuid::new_v5` makes it, with the SHA-1 of the
/// `sha1` crate: it uses the CPU's SHA instructions where there are some, and `uuid`'s own
/// portable SHA-1 was a sixth of normalization's time under load (docs/BENCHMARKS.md).
fn uuid_v5(namespace: &Uuid, name: &[u8]) -> Uuid {
    use sha1::{Digest, Sha1};
    let digest: [u8; 20] = Sha1::new()
        .chain_update(namespace.as_bytes())
        .chain_update(name)
        .finalize()
        .into();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// An unambiguous, self-delimiting encoding of normalized values in which a JSON string, a JSON
/// number and a form value with the same text are equal, and object keys are sorted.
struct Canonical(Vec<u8>);

impl Canonical {
    fn text(&mut self, text: &str) {
        self.0.push(b's');
        self.length(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    /// `len` in decimal and a colon: what `write!("{len}:")` writes, without the formatting
    /// machinery (this runs for every key and value of every callback).
    fn length(&mut self, len: usize) {
        let mut digits = [0u8; 20];
        let mut rest = len;
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.0.extend_from_slice(&digits[start..]);
        self.0.push(b':');
    }

    fn null(&mut self) {
        self.0.push(b'n');
    }

    /// A list is a list whatever its length: `["a"]`, `[["a"]]` and `"a"` are three values.
    fn list_header(&mut self, len: usize) {
        self.0.push(b'l');
        self.length(len);
    }

    /// The entries of an object sorted by key; at the root, without the signing envelope.
    fn object(&mut self, object: &Object<'_>, root: bool) {
        if let (false, Some(raw)) = (root, object.raw()) {
            return self.json(raw.get());
        }
        // Only the entries the signature check read (the first of each key, in any case, as
        // `Object::get` finds it) are the envelope. A second `nonce`, or a `Nonce` after the
        // `nonce`, is body: left out, it would let a forged body keep the genuine callback's
        // id and pass as its retry.
        let envelope: Vec<usize> = if root {
            [TIMESTAMP_KEYS, NONCE_KEYS, SIGNATURE_KEYS]
                .iter()
                .flat_map(|keys| keys.iter())
                .filter_map(|key| {
                    object
                        .entries()
                        .iter()
                        .position(|entry| entry.key.eq_ignore_ascii_case(key))
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut entries: Vec<_> = object
            .entries()
            .iter()
            .enumerate()
            .filter(|(at, _)| !envelope.contains(at))
            .map(|(_, entry)| entry)
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        self.0.push(b'o');
        self.length(entries.len());
        for entry in entries {
            self.text(&entry.key);
            match &entry.node {
                Node::Json(raw) => self.json(raw.get()),
                Node::Object(child) => self.object(child, false),
                Node::Text(text) => self.text(text),
                Node::TextList(items) => {
                    self.list_header(items.len());
                    for item in items {
                        self.text(item);
                    }
                }
            }
        }
    }

    /// JSON kept verbatim: scalars by their text (a string by its unescaped content), arrays and
    /// objects item by item. The text was validated when the body was decoded.
    fn json(&mut self, text: &str) {
        let text = text.trim();
        match text.as_bytes().first() {
            Some(b'"') => match serde_json::from_str::<Cow<'_, str>>(text) {
                Ok(content) => self.text(&content),
                Err(_) => self.text(text),
            },
            Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
                Ok(items) => {
                    self.list_header(items.len());
                    for item in items {
                        self.json(item.get());
                    }
                }
                Err(_) => self.text(text),
            },
            Some(b'{') => match serde_json::from_str::<EveryEntry<'_>>(text) {
                Ok(EveryEntry(mut entries)) => {
                    // A stable sort: copies of a repeated key stay in the order sent, and each
                    // counts, since a consumer may read either.
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    self.0.push(b'o');
                    self.length(entries.len());
                    for (key, value) in entries {
                        self.text(&key);
                        self.json(value.get());
                    }
                }
                Err(_) => self.text(text),
            },
            Some(b'n') if text == "null" => self.null(),
            _ => self.text(text),
        }
    }
}

/// Every entry of a JSON object in the order sent, repeated keys included (a map would keep one
/// copy and let the other differ unseen).
struct EveryEntry<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for EveryEntry<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> serde::de::Visitor<'de> for EntriesVisitor {
            type Value = EveryEntry<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    entries.push((key, value));
                }
                Ok(EveryEntry(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[cfg(test)]
mod tests;
