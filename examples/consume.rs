//! Consume one topic of zego-kafka-bridge the way a downstream team would, in Rust: the
//! CloudEvents headers checked against the event they carry, each value validated against its
//! JSON Schema, duplicates dropped on `id` (delivery is at least once). Every distinct event is
//! printed as one JSON line.
//!
//! ```sh
//! cargo run --example consume -- --brokers localhost:9092 --topic zego.room.closed
//! ```
//!
//! With `--expect N` it stops once N distinct events have arrived, and exits 1 if they do not
//! within `--timeout` seconds or if any record fails a check: CI runs it that way.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientConfig;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))]
    schemas: PathBuf,
    /// Stop after this many distinct events.
    #[arg(long)]
    expect: Option<usize>,
    /// And check how many records were repeats of one already read.
    #[arg(long)]
    expect_duplicates: Option<usize>,
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// A type's schema and its validator, loaded once.
struct Schema {
    id: String,
    validator: jsonschema::Validator,
}

fn load_schema(args: &Args, event_type: &str) -> Result<Schema, String> {
    let path = args.schemas.join(format!("{event_type}.schema.json"));
    let text =
        std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
    let schema: Value = serde_json::from_str(&text).map_err(|err| err.to_string())?;
    Ok(Schema {
        id: schema["$id"].as_str().unwrap_or_default().to_owned(),
        validator: jsonschema::validator_for(&schema).map_err(|err| err.to_string())?,
    })
}

/// The event a record carries, and what is wrong with it (nothing, for a good record).
fn check(
    message: &BorrowedMessage<'_>,
    args: &Args,
    schemas: &mut HashMap<String, Schema>,
) -> (Option<Value>, Vec<String>) {
    let headers: HashMap<String, String> = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| {
                    let value = header
                        .value
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    (header.key.to_owned(), value.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let value: Value = match message.payload().map(serde_json::from_slice) {
        Some(Ok(value @ Value::Object(_))) => value,
        other => {
            return (
                None,
                vec![format!("the value is not a JSON object: {other:?}")],
            )
        }
    };
    let event_type = value["type"].as_str().unwrap_or_default().to_owned();
    if !schemas.contains_key(&event_type) {
        match load_schema(args, &event_type) {
            Ok(schema) => {
                schemas.insert(event_type.clone(), schema);
            }
            Err(err) => return (None, vec![format!("no schema for {event_type:?}: {err}")]),
        }
    }
    let schema = &schemas[&event_type];
    let mut problems: Vec<String> = schema
        .validator
        .iter_errors(&value)
        .map(|error| format!("schema: {error} at {}", error.instance_path()))
        .collect();
    let key = message
        .key()
        .map(|key| String::from_utf8_lossy(key).into_owned());
    let expected = [
        ("ce_specversion", Some("1.0".to_owned())),
        ("ce_id", value["id"].as_str().map(str::to_owned)),
        ("ce_type", Some(format!("com.zegocloud.{event_type}"))),
        (
            "ce_source",
            Some(format!("zegocloud://apps/{}", value["app_id"])),
        ),
        ("ce_subject", key),
        ("ce_dataschema", Some(schema.id.clone())),
        ("content-type", Some("application/json".to_owned())),
    ];
    for (name, wanted) in expected {
        if headers.get(name) != wanted.as_ref() {
            problems.push(format!(
                "{name} is {:?}, expected {wanted:?}",
                headers.get(name)
            ));
        }
    }
    if let Some(time) = headers.get("ce_time") {
        if chrono::DateTime::parse_from_rfc3339(time).is_err() {
            problems.push(format!("ce_time {time:?} is not RFC 3339"));
        }
    }
    (Some(value), problems)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", format!("zego-example-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        // A real consumer commits after handling; the example reads and lets go.
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[&args.topic]).expect("subscribed");
    let mut schemas = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut duplicates = 0;
    let mut failures: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    // Once the expected count is reached, read a little longer so that a repeat is counted.
    let mut linger_until: Option<Instant> = None;
    while Instant::now() < deadline && linger_until.is_none_or(|until| Instant::now() < until) {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                failures.push(format!("consume: {err}"));
                break;
            }
        };
        let (value, problems) = check(&message, &args, &mut schemas);
        let place = format!(
            "{}[{}]@{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        failures.extend(
            problems
                .into_iter()
                .map(|problem| format!("{place}: {problem}")),
        );
        let Some(value) = value else { continue };
        let id = value["id"].as_str().unwrap_or_default().to_owned();
        if !seen.insert(id) {
            duplicates += 1;
            continue;
        }
        println!("{value}");
        if args.expect.is_some_and(|expected| seen.len() >= expected) && linger_until.is_none() {
            linger_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    eprintln!(
        "{}: {} distinct events, {duplicates} duplicates dropped",
        args.topic,
        seen.len()
    );
    if let Some(expected) = args.expect {
        if seen.len() != expected {
            failures.push(format!(
                "expected {expected} distinct events, read {}",
                seen.len()
            ));
        }
    }
    if let Some(expected) = args.expect_duplicates {
        if duplicates != expected {
            failures.push(format!("expected {expected} duplicates, saw {duplicates}"));
        }
    }
    for failure in &failures {
        eprintln!("FAILED {failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
