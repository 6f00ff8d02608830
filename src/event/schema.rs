//! JSON Schemas of the events, generated from the catalog. The files in `schemas/` are these,
//! written out; a test fails when they drift apart, and another when they are incompatible with
//! the schemas of the last release (`schemas/released/`, see [`compatibility_problems`]).
//!
//! The schemas are shaped to evolve: open to new properties (`additionalProperties: true`), the
//! names of coded values as plain strings (a new code's name must not break a consumer
//! generated from today's schema), and only the fields a type had when first released
//! required.

use serde_json::{json, Map, Value as Json};

use super::catalog::{EventType, FieldKind, ALL};
use super::{SCHEMA_VERSION, UNKNOWN_CODE_NAME};

/// The file name of a type's schema in `schemas/`.
pub fn file_name(kind: &EventType) -> String {
    format!("{}.schema.json", kind.name)
}

/// The `$id` of a type's schema, also the records' `ce_dataschema`:
/// `urn:zego-kafka-bridge:event:room.closed:v1`, the schema in `schemas/room.closed.schema.json`.
pub fn id_of(kind: &EventType) -> String {
    format!(
        "urn:zego-kafka-bridge:event:{}:v{SCHEMA_VERSION}",
        kind.name
    )
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
            FieldKind::Str | FieldKind::Token | FieldKind::JsonText => add(
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
                let names: Vec<String> =
                    codes.iter().map(|(_, name)| format!("`{name}`")).collect();
                add(
                    field.name.into(),
                    json!({"type": ["string", "null"], "description": format!(
                    "Name of `{}_code`: {}; `{UNKNOWN_CODE_NAME}` for a code not documented. \
                     New names come with new codes: treat a name you do not know as `{UNKNOWN_CODE_NAME}`.",
                    field.name, names.join(", "))}),
                );
            }
        }
    }
    add(
        "extra".into(),
        json!({"type": "object",
        "description": "Keys the bridge does not know, and aliases that disagree, verbatim with their original names."}),
    );
    let added_later: Vec<String> = kind
        .fields
        .iter()
        .filter(|field| field.added_later)
        .flat_map(|field| match field.kind {
            FieldKind::Enum(_) => vec![format!("{}_code", field.name), field.name.to_owned()],
            _ => vec![field.name.to_owned()],
        })
        .collect();
    let required: Vec<Json> = properties
        .keys()
        .filter(|key| !added_later.contains(key))
        .map(|key| json!(key))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": id_of(kind),
        "title": kind.name,
        "description": format!("{} ZEGO callback: {}.", kind.description,
            if kind.zego_events.is_empty() { "any unknown event".to_owned() } else { kind.zego_events.join(", ") }),
        "type": "object",
        "additionalProperties": true,
        "required": required,
        "properties": properties,
    })
}

/// Why `current` cannot replace `released` (the schema of one type at the last release)
/// without breaking a consumer built on `released`; empty when it can. The rules, from the
/// consumers' side (a consumer built on `released` reads records valid under `current`):
/// the type, its `schema_version` and every constant stay; every property stays, with the same
/// JSON types, format and pattern (a coded value's name may turn from a closed list into a
/// string: names are never removed); what was required stays required; a property added since
/// is not required (records written before lack it); the schema stays open to new properties.
/// A rename or a type change needs a new `schema_version` and, where needed, a new topic.
pub fn compatibility_problems(released: &Json, current: &Json) -> Vec<String> {
    let mut problems = Vec::new();
    let properties = |schema: &Json| {
        schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let required = |schema: &Json| -> Vec<String> {
        schema["required"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| key.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (was, now) = (properties(released), properties(current));
    if current["additionalProperties"] == json!(false) {
        problems
            .push("the schema is closed to new properties (additionalProperties: false)".into());
    }
    for (name, before) in &was {
        let Some(after) = now.get(name) else {
            problems.push(format!("`{name}` was removed"));
            continue;
        };
        for facet in ["const", "format", "pattern"] {
            if before.get(facet).is_some() && before.get(facet) != after.get(facet) {
                problems.push(format!(
                    "`{name}`: its {facet} changed from {} to {}",
                    before[facet],
                    after.get(facet).unwrap_or(&Json::Null)
                ));
            }
        }
        let types = |schema: &Json| -> Option<Vec<String>> {
            let mut types: Vec<String> = match &schema["type"] {
                Json::String(one) => vec![one.clone()],
                Json::Array(many) => many
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
                _ => return None,
            };
            types.sort();
            Some(types)
        };
        match (types(before), before.get("enum"), types(after)) {
            (Some(was_types), _, now_types) if Some(&was_types) != now_types.as_ref() => {
                problems.push(format!(
                    "`{name}`: its type changed from {was_types:?} to {}",
                    now_types.map_or("any".to_owned(), |types| format!("{types:?}"))
                ));
            }
            (None, Some(names), now_types) => {
                let names_stay = match (after.get("enum"), now_types) {
                    (Some(now_names), _) => names
                        .as_array()
                        .into_iter()
                        .flatten()
                        .all(|name| now_names.as_array().is_some_and(|now| now.contains(name))),
                    (None, Some(types)) => {
                        types.iter().all(|t| t == "string" || t == "null")
                            && names.as_array().into_iter().flatten().all(|name| {
                                name.is_null() && types.contains(&"null".to_owned())
                                    || name.is_string()
                            })
                    }
                    (None, None) => false,
                };
                if !names_stay {
                    problems.push(format!("`{name}`: a value it allowed is no longer allowed"));
                }
            }
            (None, None, Some(now_types)) => problems.push(format!(
                "`{name}`: it allowed any JSON value, now only {now_types:?}"
            )),
            _ => {}
        }
    }
    let (was_required, now_required) = (required(released), required(current));
    for name in &was_required {
        if !now_required.contains(name) {
            problems.push(format!(
                "`{name}` is no longer required: consumers rely on it"
            ));
        }
    }
    for name in &now_required {
        if !was.contains_key(name) {
            problems.push(format!(
                "`{name}` was added as required: records written before lack it (declare it \
                 `added_later`)"
            ));
        }
    }
    problems
}

/// Every schema with its file name, in catalog order.
pub fn all() -> Vec<(String, Json)> {
    ALL.iter()
        .copied()
        .map(|kind| (file_name(kind), schema_for(kind)))
        .collect()
}
