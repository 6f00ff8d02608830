//! The consumers' reference in docs/events.md (type → topic → key → fields, one example each),
//! generated from the catalog, with examples made by normalizing the bundled samples. A test
//! keeps the copy current.

use std::fmt::Write as _;

use super::catalog::{EventType, FieldKind, KeyRule, ALL};
use super::normalize;
use crate::samples;
use crate::zego::{sniff, CommonFields, Product, RawCallback};

/// Marks the generated part of docs/events.md.
pub const BEGIN_MARKER: &str = "<!-- BEGIN GENERATED EVENT REFERENCE: edit src/event/catalog.rs, then run `UPDATE_DOCS=1 cargo test docs` -->";
pub const END_MARKER: &str = "<!-- END GENERATED EVENT REFERENCE -->";

/// A fixed receive time so the examples do not change from one generation to the next.
const EXAMPLE_RECEIVED_AT_MS: i64 = 1_700_000_000_000;

const UNRECOGNIZED_EXAMPLE: &str = r#"{"event":"room_user_count","appid":"1","timestamp":"1700000000","nonce":"1","signature":"…","room_id":"room1","user_count":12,"admin_user_count":1}"#;

pub fn consumer_reference() -> String {
    let mut out = String::new();
    for product in Product::ALL {
        let kinds: Vec<&EventType> = ALL
            .iter()
            .copied()
            .filter(|kind| kind.product == product)
            .collect();
        if kinds.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n### {title}: `POST {path}`\n\n| type | ZEGO callback | topic (default) | key |\n|---|---|---|---|\n",
            title = product.title(),
            path = product.callback_path(),
        );
        for kind in &kinds {
            let _ = writeln!(
                out,
                "| [`{name}`](#{anchor}) | {zego} | `zego.{name}` | {key} |",
                name = kind.name,
                anchor = kind.name.replace('.', ""),
                zego = zego_names(kind),
                key = key_description(kind),
            );
        }
    }
    for kind in ALL.iter() {
        let _ = write!(
            out,
            "\n#### {name}\n\n{description} From {zego} (`POST {path}`); schema [`schemas/{name}.schema.json`](../schemas/{name}.schema.json); \
             key {key}; the `id` covers {identity}.\n\n",
            name = kind.name,
            description = kind.description,
            zego = zego_names(kind),
            path = kind.product.callback_path(),
            key = key_description(kind),
            identity = kind.identity.describe(),
        );
        if !kind.fields.is_empty() {
            out.push_str("| field | JSON type | meaning |\n|---|---|---|\n");
            for field in kind.fields {
                match field.kind {
                    FieldKind::Enum(codes) => {
                        let listing: Vec<String> = codes
                            .iter()
                            .map(|(code, name)| format!("{code} `{name}`"))
                            .collect();
                        let _ = writeln!(
                            out,
                            "| `{0}_code`, `{0}` | integer, string | {1} Codes: {2}. |",
                            field.name,
                            field.doc,
                            listing.join(", ")
                        );
                    }
                    other => {
                        let _ = writeln!(
                            out,
                            "| `{}` | {} | {} |",
                            field.name,
                            json_type(other),
                            field.doc
                        );
                    }
                }
            }
        }
        if let Some(example) = example(kind) {
            let _ = write!(
                out,
                "\n<details><summary>Example value</summary>\n\n```json\n{example}\n```\n</details>\n"
            );
        }
    }
    out
}

fn zego_names(kind: &EventType) -> String {
    if kind.zego_events.is_empty() {
        return "any other signed callback".to_owned();
    }
    let numbered = kind.zego_events[0].starts_with(|c: char| c.is_ascii_digit());
    kind.zego_events
        .iter()
        .map(|name| {
            if numbered {
                format!("`EventType` {name}")
            } else {
                format!("`{name}`")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_description(kind: &EventType) -> String {
    let quoted = |names: Vec<String>| match names.as_slice() {
        [] => "none".to_owned(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first} (else {})", rest.join(", else ")),
    };
    match kind.key {
        KeyRule::FirstOf(names) => quoted(
            names
                .iter()
                .filter(|name| kind.fields.iter().any(|field| field.name == **name))
                .map(|name| format!("`{name}`"))
                .collect(),
        ),
        KeyRule::Conversation => "the conversation: `{conv_type_code}:{conv_id}`; one-to-one \
            `0:{user}:{user}`, both users in byte order so that both directions share a partition; \
            without `conv_id`, the sender"
            .to_owned(),
        KeyRule::Body(paths) => format!(
            "{} of the callback when present",
            quoted(
                paths
                    .iter()
                    .map(|path| format!("`{}`", path.join(".")))
                    .collect()
            )
        ),
    }
}

fn json_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Str | FieldKind::Token => "string",
        FieldKind::JsonText => "string (JSON text)",
        FieldKind::Int => "integer",
        FieldKind::Id64 => "string (exact unsigned 64-bit decimal)",
        FieldKind::TimeMs | FieldKind::BeijingTime => "integer (Unix ms)",
        FieldKind::Flag => "boolean",
        FieldKind::StrList => "array of strings",
        FieldKind::Json => "any JSON",
        FieldKind::Enum(_) => "integer, string",
    }
}

/// The event the first bundled JSON sample of this type normalizes to, pretty-printed.
fn example(kind: &EventType) -> Option<String> {
    let body = if kind.zego_events.is_empty() && kind.product == Product::Rtc {
        UNRECOGNIZED_EXAMPLE.to_owned()
    } else {
        let sample = samples::callbacks().find(|sample| {
            sample.file.ends_with(".json")
                && sample.product.takes(kind.product)
                && (kind.zego_events.contains(&sample.event())
                    || kind.zego_events.is_empty()
                        && !ALL.iter().any(|known| {
                            known.product == kind.product
                                && known.zego_events.contains(&sample.event())
                        }))
        })?;
        sample.body.replace(
            r#""Timestamp": "timestamp""#,
            r#""Timestamp": "1700000000""#,
        )
    };
    let callback = RawCallback::decode(body.as_bytes(), sniff(body.as_bytes())).ok()?;
    let common = CommonFields::read_for(&callback.root, kind.product).ok()?;
    let event = normalize(&callback, &common, kind.product, EXAMPLE_RECEIVED_AT_MS);
    let value: serde_json::Value = serde_json::from_slice(&event.to_json()).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_of_the_events_are_up_to_date() {
        crate::generated::assert_current(
            "docs/events.md",
            BEGIN_MARKER,
            END_MARKER,
            &consumer_reference(),
        );
    }

    /// The chart's values schema lists the types whose topic `kafka.topics` may override: every
    /// type of the catalog, so that a product's override is not refused by `helm install`.
    #[test]
    fn the_charts_topic_overrides_take_every_type() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("helm/zego-kafka-bridge/values.schema.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        // One property per type and no other: a misspelt type is then refused at its own path
        // (`/kafka/topics`, "additional properties 'room.closd' not allowed"), where an enum of
        // property names made Helm report it at '' among all 73 names.
        let topic_name =
            serde_json::json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$"});
        let properties: serde_json::Map<String, serde_json::Value> = ALL
            .iter()
            .map(|kind| (kind.name.to_owned(), topic_name.clone()))
            .collect();
        let wanted = serde_json::json!({
            "type": "object",
            "description": "The topic of an event type, by type (docs/events.md).",
            "properties": properties,
            "additionalProperties": false
        });
        let listed = &mut schema["properties"]["kafka"]["properties"]["topics"];
        if std::env::var_os("UPDATE_DOCS").is_some() {
            *listed = wanted;
            let updated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            std::fs::write(&path, updated).unwrap();
            return;
        }
        assert_eq!(
            *listed,
            wanted,
            "kafka.topics in {} is stale: run `UPDATE_DOCS=1 cargo test docs`",
            path.display()
        );
    }

    #[test]
    fn every_type_but_unrecognized_has_a_sample_example() {
        for kind in ALL.iter() {
            let has_sample = kind.product == Product::Rtc
                || samples::callbacks().any(|sample| {
                    sample.product.takes(kind.product)
                        && crate::event::catalog::resolve(kind.product, sample.event())
                            .0
                            .name
                            == kind.name
                });
            assert_eq!(example(kind).is_some(), has_sample, "{}", kind.name);
        }
    }

    /// Every test the threat model (docs/SECURITY.md) names exists, so that the table cannot
    /// claim a proof that was renamed or removed.
    #[test]
    fn every_test_the_threat_model_names_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let model = std::fs::read_to_string(root.join("docs/SECURITY.md")).unwrap();
        let mut sources = String::new();
        let mut stack = vec![root.join("src"), root.join("tests"), root.join("fuzz")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    sources.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let named: Vec<&str> = model
            .lines()
            .filter(|line| line.starts_with("| "))
            .filter_map(|line| line.trim_end_matches('|').rsplit('|').next())
            .flat_map(|tests| tests.split('`').skip(1).step_by(2))
            .filter(|name| {
                name.len() > 12 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .collect();
        assert!(named.len() > 30, "{named:?}");
        for name in named {
            assert!(
                sources.contains(&format!("fn {name}("))
                    || sources.contains(&format!("fn {name}<"))
                    || root.join(format!("fuzz/fuzz_targets/{name}.rs")).exists(),
                "docs/SECURITY.md names the test {name}, which does not exist"
            );
        }
    }
}
