//! How an event is written as a Kafka record: JSON value, CloudEvents 1.0 binary-mode headers.

use chrono::{DateTime, SecondsFormat};
use rdkafka::message::{Header, OwnedHeaders};

use crate::event::Event;

pub const CONTENT_TYPE: &str = "application/json";
const SPEC_VERSION: &str = "1.0";

/// The CloudEvents headers of an event: `ce_specversion`, `ce_id`, `ce_source`, `ce_type`,
/// `ce_time` and `content-type`.
pub fn headers_for(event: &Event<'_>) -> OwnedHeaders {
    let id = event.id.hyphenated().to_string();
    let source = format!("zegocloud://apps/{}", event.app_id);
    let kind = format!("com.zegocloud.{}", event.kind.name);
    let time = rfc3339(event.time_ms());
    OwnedHeaders::new_with_capacity(6)
        .insert(header("ce_specversion", SPEC_VERSION))
        .insert(header("ce_id", &id))
        .insert(header("ce_source", &source))
        .insert(header("ce_type", &kind))
        .insert(header("ce_time", &time))
        .insert(header("content-type", CONTENT_TYPE))
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// Unix milliseconds as RFC 3339 in UTC, e.g. `2017-07-10T08:56:29.909Z`.
fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_in_utc_with_milliseconds() {
        assert_eq!(rfc3339(1499676989909), "2017-07-10T08:56:29.909Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
