//! Consume one topic of zego-kafka-bridge the way a downstream team would, in Rust: the
//! CloudEvents headers checked against the event they carry, each value validated against its
//! JSON Schema, duplicates dropped on `id` (delivery is at least once). Every distinct event is
//! printed as one JSON line.
//!
//! ```sh
//! cargo run --example consume -- --brokers localhost:9092 --topic zego.room.closed
//! ```
//!
//! When the bridge uses a schema registry, give it too (`--registry http://localhost:8081`):
//! each value is then in the registry's wire format (byte 0, the schema id in 4 bytes
//! big-endian, the JSON), and it is validated against the schema the registry holds under
//! that id, fetched once per id.
//!
//! A cluster with SASL or TLS takes librdkafka's properties, as the bridge's
//! `ZEGO_BRIDGE_LIBRDKAFKA_*` do: `-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512
//! -X sasl.username=reader -X sasl.password=… -X ssl.ca.location=ca.pem`.
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
    /// The schema registry the bridge writes to: values are framed, schemas come from it.
    #[arg(long)]
    registry: Option<String>,
    /// Stop after this many distinct events.
    #[arg(long)]
    expect: Option<usize>,
    /// And check how many records were repeats of one already read.
    #[arg(long)]
    expect_duplicates: Option<usize>,
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// A librdkafka property (security.protocol, sasl.*, ssl.*), repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = property)]
    properties: Vec<(String, String)>,
}

fn property(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {pair}"))
}

/// A type's schema and its validator, loaded once.
struct Schema {
    id: String,
    validator: jsonschema::Validator,
}

impl Schema {
    fn of(schema: &Value) -> Result<Schema, String> {
        Ok(Schema {
            id: schema["$id"].as_str().unwrap_or_default().to_owned(),
            validator: jsonschema::validator_for(schema).map_err(|err| err.to_string())?,
        })
    }
}

/// Where schemas come from: the repository's files, or the registry by the id a record names.
enum Schemas {
    Files(PathBuf),
    Registry {
        url: String,
        // The consumer is synchronous; a small runtime runs the registry's HTTP requests.
        runtime: tokio::runtime::Runtime,
    },
}

impl Schemas {
    /// Splits a value into the schema id it is framed with (registry only) and its JSON.
    fn unframe<'a>(&self, payload: &'a [u8]) -> Result<(Option<u32>, &'a [u8]), String> {
        match (self, payload) {
            (Schemas::Files(_), json) => Ok((None, json)),
            (Schemas::Registry { .. }, [0, a, b, c, d, json @ ..]) => {
                Ok((Some(u32::from_be_bytes([*a, *b, *c, *d])), json))
            }
            (Schemas::Registry { .. }, _) => Err(
                "the value is not in the registry's wire format (byte 0 and a schema id)".into(),
            ),
        }
    }

    /// The key a schema is cached under: the type's for files, the id's for the registry.
    fn key(schema_id: Option<u32>, event_type: &str) -> String {
        match schema_id {
            Some(id) => format!("registry schema {id}"),
            None => event_type.to_owned(),
        }
    }

    fn load(&self, schema_id: Option<u32>, event_type: &str) -> Result<Schema, String> {
        match (self, schema_id) {
            (Schemas::Registry { url, runtime }, Some(id)) => {
                let url = format!("{url}/schemas/ids/{id}");
                let body = runtime.block_on(async {
                    let response = reqwest::get(&url).await.map_err(|err| err.to_string())?;
                    let status = response.status();
                    let text = response.text().await.map_err(|err| err.to_string())?;
                    if !status.is_success() {
                        return Err(format!("{url}: HTTP {status}: {text}"));
                    }
                    Ok::<_, String>(text)
                })?;
                let body: Value = serde_json::from_str(&body).map_err(|err| err.to_string())?;
                let schema = serde_json::from_str(body["schema"].as_str().unwrap_or_default())
                    .map_err(|err| format!("{url}: the schema is not JSON: {err}"))?;
                Schema::of(&schema)
            }
            (Schemas::Files(dir), _) => {
                let path = dir.join(format!("{event_type}.schema.json"));
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| format!("{}: {err}", path.display()))?;
                Schema::of(&serde_json::from_str(&text).map_err(|err| err.to_string())?)
            }
            (Schemas::Registry { .. }, None) => unreachable!("a framed value names its schema"),
        }
    }
}

/// The event a record carries, and what is wrong with it (nothing, for a good record).
fn check(
    message: &BorrowedMessage<'_>,
    source: &Schemas,
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
    let (schema_id, json) = match source.unframe(message.payload().unwrap_or_default()) {
        Ok(unframed) => unframed,
        Err(problem) => return (None, vec![problem]),
    };
    let value: Value = match serde_json::from_slice(json) {
        Ok(value @ Value::Object(_)) => value,
        other => {
            return (
                None,
                vec![format!("the value is not a JSON object: {other:?}")],
            )
        }
    };
    let event_type = value["type"].as_str().unwrap_or_default().to_owned();
    let key = Schemas::key(schema_id, &event_type);
    if !schemas.contains_key(&key) {
        match source.load(schema_id, &event_type) {
            Ok(schema) => {
                schemas.insert(key.clone(), schema);
            }
            Err(err) => return (None, vec![format!("no schema for {event_type:?}: {err}")]),
        }
    }
    let schema = &schemas[&key];
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
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", format!("zego-example-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        // A real consumer commits after handling; the example reads and lets go.
        .set("enable.auto.commit", "false");
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create().expect("a consumer");
    consumer.subscribe(&[&args.topic]).expect("subscribed");
    let source = match &args.registry {
        Some(url) => Schemas::Registry {
            url: url.trim_end_matches('/').to_owned(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
        },
        None => Schemas::Files(args.schemas.clone()),
    };
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
        let (value, problems) = check(&message, &source, &mut schemas);
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
