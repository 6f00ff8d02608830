//! Structured logging through `tracing`, as text or JSON lines. librdkafka's own log lines
//! arrive through the `log` facade and are bridged in.

use std::fmt::Debug;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::configuration::LogFormat;

/// Fields that hold a JSON document (the published event): JSON logs carry them as the
/// document itself, which a log pipeline can index, rather than as an escaped string.
const JSON_DOCUMENT_FIELDS: &[&str] = &["payload"];

/// Installs the global subscriber. `level` takes `RUST_LOG`-style directives (`info`,
/// `zego_kafka_bridge=debug,rdkafka=warn`).
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(level)
        .map_err(|err| format!("ZEGO_BRIDGE_LOG_LEVEL: {level:?} is not a valid filter: {err}"))?;
    // Colour codes only for a person at a terminal: in a file or a log pipeline they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .try_init(),
    };
    result.map_err(|err| format!("cannot install the logger: {err}"))
}

/// One JSON object per line: `timestamp`, `level`, the event's fields (`message` among them),
/// `target`, and at debug level the callback's span (`type`, `app_id`, `event_id`) under `span`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        event.record(&mut JsonVisitor(&mut line));
        line.insert("target".into(), event.metadata().target().into());
        if let Some(span) = context.lookup_current() {
            let mut fields = Map::new();
            fields.insert("name".into(), span.name().into());
            // The span's fields, formatted by JsonFields when it was entered.
            if let Some(formatted) = span.extensions().get::<FormattedFields<N>>() {
                if let Ok(Value::Object(recorded)) = serde_json::from_str(&formatted.fields) {
                    fields.extend(recorded);
                }
            }
            line.insert("span".into(), Value::Object(fields));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn text(&mut self, field: &Field, text: String) {
        let value = if JSON_DOCUMENT_FIELDS.contains(&field.name()) {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.text(field, format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_owned());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_the_payload_as_an_object_and_the_span_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::debug_span!("callback", r#type = "room.closed", app_id = 42u64);
            let _entered = span.enter();
            let payload = r#"{"id":"e1","data":{"room_id":"r\"1"}}"#;
            tracing::info!(%payload, offset = 7i64, "event published");
            tracing::warn!(payload = "not json {", "odd");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let published = &lines[0];
        assert_eq!(published["message"], "event published");
        assert_eq!(published["level"], "INFO");
        assert_eq!(published["payload"]["data"]["room_id"], "r\"1", "{text}");
        assert_eq!(published["offset"], 7);
        assert_eq!(published["span"]["type"], "room.closed", "{text}");
        assert_eq!(published["span"]["app_id"], 42);
        assert!(published["timestamp"].as_str().unwrap().ends_with('Z'));
        // A payload that is no JSON stays a string.
        assert_eq!(lines[1]["payload"], "not json {");
    }
}
