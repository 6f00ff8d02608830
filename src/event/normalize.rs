//! Turns a decoded, verified callback into an [`Event`] by following the catalog.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::catalog::{self, Field, FieldKind, Identity, Source};
use super::{Event, FieldValue, Value};
use crate::zego::{
    CommonFields, Node, Object, RawCallback, NONCE_KEYS, SIGNATURE_KEYS, TIMESTAMP_KEYS,
};

/// Namespace of the UUIDv5 event ids. Changing it changes every id: never do.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5a1e_90c4_7b2d_4f0e_9c3a_26d8_e1b4_f702);

/// Keys tried, in order, to find a Kafka key in a callback the bridge does not recognise.
const UNRECOGNIZED_KEY_SOURCES: &[&str] = &[
    "room_id",
    "roomid",
    "channel_id",
    "task_id",
    "taskid",
    "stream_id",
    "streamid",
    "stream_alias",
];

/// Builds the event for a callback whose common fields were read (and consumed) already.
pub fn normalize<'a>(
    callback: &RawCallback<'a>,
    common: &CommonFields<'a>,
    received_at_ms: i64,
) -> Event<'a> {
    let kind = catalog::for_zego_event(&common.event);
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
        zego_event: common.event.clone(),
        app_id: common.app_id,
        sent_at: common.timestamp,
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
    event.id = event_id(&event, root);
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
        FieldKind::Int | FieldKind::TimeMs | FieldKind::Enum(_) => {
            let Some(text) = non_empty(scalar_text(node)?) else {
                return Ok(None);
            };
            let value = text.trim().parse::<i64>().map_err(|_| Unconvertible)?;
            let value = if source.in_seconds {
                value.checked_mul(1000).ok_or(Unconvertible)?
            } else {
                value
            };
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
    let from_fields =
        ["room_id", "task_id", "stream_id"]
            .iter()
            .find_map(|name| match event.get(name) {
                Some(Value::Str(text)) if !text.is_empty() => Some(text.clone()),
                _ => None,
            });
    if from_fields.is_some() || !event.kind.fields.is_empty() {
        return from_fields;
    }
    UNRECOGNIZED_KEY_SOURCES.iter().find_map(|key| {
        let scalar = root.get(key)?.node.scalar().ok()??;
        (!scalar.text.is_empty()).then_some(scalar.text)
    })
}

fn event_id(event: &Event<'_>, root: &Object<'_>) -> Uuid {
    let mut material = String::with_capacity(256);
    let _ = write!(material, "{}\n{}\n", event.kind.name, event.app_id);
    match event.kind.identity {
        Identity::Fields(names) => {
            for name in names {
                let value = event.get(name).unwrap_or(&Value::Null);
                let _ = writeln!(
                    material,
                    "{name}={}",
                    serde_json::to_string(value).unwrap_or_default()
                );
            }
        }
        Identity::Content => {
            let signed: Vec<&str> = [TIMESTAMP_KEYS, NONCE_KEYS, SIGNATURE_KEYS].concat();
            let mut entries: Vec<(String, String)> = root
                .entries()
                .iter()
                .filter(|entry| !signed.iter().any(|key| entry.key.eq_ignore_ascii_case(key)))
                .map(|entry| (entry.key.to_ascii_lowercase(), identity_text(&entry.node)))
                .collect();
            entries.sort();
            for (key, value) in entries {
                let _ = writeln!(material, "{key}={value}");
            }
        }
    }
    Uuid::new_v5(&EVENT_ID_NAMESPACE, material.as_bytes())
}

fn identity_text(node: &Node<'_>) -> String {
    match node {
        Node::Json(raw) => raw.get().to_owned(),
        Node::Object(object) => object
            .raw()
            .map(|raw| raw.get().to_owned())
            .unwrap_or_default(),
        Node::Text(text) => text.to_string(),
        Node::TextList(items) => items.join("\u{1f}"),
    }
}

#[cfg(test)]
mod tests;
