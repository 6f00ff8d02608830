//! JSON Schemas of the events, generated from the catalog. The files in `schemas/` are these,
//! written out; a test fails when they drift apart.

use serde_json::{json, Map, Value as Json};

use super::catalog::{EventType, FieldKind, ALL};
use super::{SCHEMA_VERSION, UNKNOWN_CODE_NAME};

/// The file name of a type's schema in `schemas/`.
pub fn file_name(kind: &EventType) -> String {
    format!("{}.schema.json", kind.name)
}

/// The JSON Schema (draft 2020-12) of one event type.
pub fn schema_for(kind: &EventType) -> Json {
    let mut properties = Map::new();
    let mut add = |name: String, schema: Json| {
        properties.insert(name, schema);
    };
    add(
        "id".into(),
        json!({"type": "string", "format": "uuid",
        "description": "Stable id of this occurrence: the same for every retry of one callback."}),
    );
    add("type".into(), json!({"const": kind.name}));
    add(
        "zego_event".into(),
        match kind.zego_events {
            [only] => json!({"const": only, "description": "ZEGO's name for the callback."}),
            _ => json!({"type": "string", "description": "ZEGO's name for the callback."}),
        },
    );
    add("schema_version".into(), json!({"const": SCHEMA_VERSION}));
    add(
        "app_id".into(),
        json!({"type": "integer", "minimum": 0, "description": "ZEGO AppID."}),
    );
    add(
        "sent_at".into(),
        json!({"type": "integer",
        "description": if kind.has_sent_at_ms() {
            "When ZEGO sent the callback, Unix seconds (rounded down: see `sent_at_ms`)."
        } else {
            "When ZEGO sent the callback (its `timestamp`), Unix seconds."
        }}),
    );
    if kind.has_sent_at_ms() {
        add(
            "sent_at_ms".into(),
            json!({"type": "integer",
            "description": "When ZEGO sent the callback (its `timestamp`, in seconds or milliseconds), Unix milliseconds."}),
        );
    }
    add(
        "received_at_ms".into(),
        json!({"type": "integer", "minimum": 0,
        "description": "When the bridge received the callback, Unix milliseconds."}),
    );
    add(
        "occurred_at_ms".into(),
        json!({"type": ["integer", "null"],
        "description": match kind.occurred_at {
            Some(field) => format!("When it happened: a copy of `{field}`."),
            None => "Always null: this callback does not say when it happened.".to_owned(),
        }}),
    );
    for field in kind.fields {
        let doc = field.doc;
        match field.kind {
            FieldKind::Str | FieldKind::Token => add(
                field.name.into(),
                json!({"type": ["string", "null"], "description": doc}),
            ),
            FieldKind::Int | FieldKind::TimeMs | FieldKind::BeijingTime => add(
                field.name.into(),
                json!({"type": ["integer", "null"], "description": doc}),
            ),
            FieldKind::Id64 => add(
                field.name.into(),
                json!({"type": ["string", "null"],
                "pattern": "^(0|[1-9][0-9]{0,19})$", "description": doc}),
            ),
            FieldKind::Flag => add(
                field.name.into(),
                json!({"type": ["boolean", "null"], "description": doc}),
            ),
            FieldKind::StrList => add(
                field.name.into(),
                json!({"type": ["array", "null"],
                "items": {"type": "string"}, "description": doc}),
            ),
            FieldKind::Json => add(
                field.name.into(),
                json!({"description": format!(
                "{doc} Any JSON value (a string when the callback came as a form).")}),
            ),
            FieldKind::Enum(codes) => {
                let listing: Vec<String> = codes
                    .iter()
                    .map(|(code, name)| format!("{code} = {name}"))
                    .collect();
                add(
                    format!("{}_code", field.name),
                    json!({"type": ["integer", "null"],
                    "description": format!("{doc} Codes: {}.", listing.join(", "))}),
                );
                let mut names: Vec<Json> = codes.iter().map(|(_, name)| json!(name)).collect();
                names.push(json!(UNKNOWN_CODE_NAME));
                names.push(Json::Null);
                add(
                    field.name.into(),
                    json!({"enum": names, "description": format!(
                    "Name of `{}_code`; `{UNKNOWN_CODE_NAME}` for a code not documented.", field.name)}),
                );
            }
        }
    }
    add(
        "extra".into(),
        json!({"type": "object",
        "description": "Keys the bridge does not know, and aliases that disagree, verbatim with their original names."}),
    );
    let required: Vec<Json> = properties.keys().map(|key| json!(key)).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:zego-kafka-bridge:event:{}:v{SCHEMA_VERSION}", kind.name),
        "title": kind.name,
        "description": format!("{} ZEGO callback: {}.", kind.description,
            if kind.zego_events.is_empty() { "any unknown event".to_owned() } else { kind.zego_events.join(", ") }),
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

/// Every schema with its file name, in catalog order.
pub fn all() -> Vec<(String, Json)> {
    ALL.iter()
        .copied()
        .map(|kind| (file_name(kind), schema_for(kind)))
        .collect()
}
