//! Structured logging through `tracing`, as text or JSON lines. librdkafka's own log lines
//! arrive through the `log` facade and are bridged in.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::configuration::LogFormat;

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
        // At debug level a callback's lines carry its span (`type`, `app_id`, `event_id`) under
        // `span`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|err| format!("cannot install the logger: {err}"))
}
