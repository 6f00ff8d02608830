//! The normalized event model: one flat, typed JSON object per callback.

pub mod catalog;
// The consumers' reference in docs/events.md: generated, and checked, by a test.
#[cfg(test)]
mod docs;
mod normalize;
pub mod schema;

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

pub use catalog::{EventType, Field, FieldKind, Identity, KeyRule, Product};
pub use normalize::normalize;

/// Version of the event layout; bumped only on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A normalized field value. Borrowed from the request body wherever possible.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    StrList(Vec<Cow<'a, str>>),
    /// JSON kept exactly as it arrived.
    Raw(&'a RawValue),
    /// What is left of a partly recognised object (under `extra`).
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::StrList(a), Value::StrList(b)) => a == b,
            (Value::Raw(a), Value::Raw(b)) => a.get() == b.get(),
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl Value<'_> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(value) => Some(*value),
            _ => None,
        }
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Bool(value) => serializer.serialize_bool(*value),
            Value::Int(value) => serializer.serialize_i64(*value),
            Value::Str(text) => serializer.serialize_str(text),
            Value::StrList(items) => items.serialize(serializer),
            Value::Raw(raw) => raw.serialize(serializer),
            Value::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// One field of an event as the catalog declares it, with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue<'a> {
    pub field: &'static Field,
    /// For an enumeration, the code (`Value::Int`) or `Value::Null`.
    pub value: Value<'a>,
}

impl FieldValue<'_> {
    /// The name of a coded value, as written next to its code.
    fn code_name(&self, codes: &'static [(i64, &'static str)]) -> Option<&'static str> {
        let code = self.value.as_int()?;
        Some(
            codes
                .iter()
                .find(|(known, _)| *known == code)
                .map_or(UNKNOWN_CODE_NAME, |(_, name)| name),
        )
    }
}

/// The name written next to a code the documentation does not list.
pub const UNKNOWN_CODE_NAME: &str = "unknown";

/// A normalized event, ready to be encoded and published.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Stable across ZEGO's retries of one callback and distinct for callbacks that differ in
    /// anything but `timestamp`, `nonce` and `signature` (see `normalize::event_id`).
    pub id: Uuid,
    pub kind: &'static EventType,
    /// The ZEGO event name as the catalog spells it; for an unrecognized callback, as sent,
    /// trimmed and in lower case.
    pub zego_event: Cow<'a, str>,
    pub app_id: u64,
    /// ZEGO's `timestamp`: when the callback was sent, in Unix milliseconds whatever the unit
    /// it came in (written as `sent_at` in seconds, and for the products after RTC also as
    /// `sent_at_ms`).
    pub sent_at_ms: i64,
    pub received_at_ms: i64,
    pub occurred_at_ms: Option<i64>,
    pub fields: Vec<FieldValue<'a>>,
    /// Keys the bridge does not know, verbatim, with their original names.
    pub extra: Vec<(Cow<'a, str>, Value<'a>)>,
    /// The Kafka key, chosen by the type's [`catalog::KeyRule`].
    pub partition_key: Option<Cow<'a, str>>,
    /// Declared fields whose value had the wrong form; the original is kept under `extra`.
    pub coercion_failures: Vec<&'static str>,
}

impl<'a> Event<'a> {
    /// The value of a declared field by its written name (`close_reason_code` for a code).
    pub fn get(&self, name: &str) -> Option<&Value<'a>> {
        self.fields.iter().find_map(|entry| {
            let matches = entry.field.name == name
                || matches!(entry.field.kind, FieldKind::Enum(_))
                    && name.strip_suffix("_code") == Some(entry.field.name);
            matches.then_some(&entry.value)
        })
    }

    /// The CloudEvents `time`: when it happened where known, else when ZEGO sent it.
    pub fn time_ms(&self) -> i64 {
        self.occurred_at_ms.unwrap_or(self.sent_at_ms)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serializes: keys are strings")
    }
}

impl Serialize for Event<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("type", self.kind.name)?;
        map.serialize_entry("zego_event", &self.zego_event)?;
        map.serialize_entry("schema_version", &SCHEMA_VERSION)?;
        map.serialize_entry("app_id", &self.app_id)?;
        map.serialize_entry("sent_at", &self.sent_at_ms.div_euclid(1000))?;
        if self.kind.has_sent_at_ms() {
            map.serialize_entry("sent_at_ms", &self.sent_at_ms)?;
        }
        map.serialize_entry("received_at_ms", &self.received_at_ms)?;
        map.serialize_entry("occurred_at_ms", &self.occurred_at_ms)?;
        for entry in &self.fields {
            match entry.field.kind {
                FieldKind::Enum(codes) => {
                    map.serialize_entry(&CodeKey(entry.field.name), &entry.value)?;
                    map.serialize_entry(entry.field.name, &entry.code_name(codes))?;
                }
                _ => map.serialize_entry(entry.field.name, &entry.value)?,
            }
        }
        map.serialize_entry("extra", &ExtraMap(&self.extra))?;
        map.end()
    }
}

/// Serializes as `<name>_code` without allocating.
struct CodeKey(&'static str);

impl Serialize for CodeKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}_code", self.0))
    }
}

struct ExtraMap<'e, 'a>(&'e [(Cow<'a, str>, Value<'a>)]);

impl Serialize for ExtraMap<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
