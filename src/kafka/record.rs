//! How an event is written as a Kafka record: JSON value, CloudEvents 1.0 binary-mode headers.

use chrono::{DateTime, SecondsFormat};
use rdkafka::message::{Header, OwnedHeaders};

use uuid::Uuid;

use super::topics::TopicMap;
use crate::event::Event;

pub const CONTENT_TYPE: &str = "application/json";
const SPEC_VERSION: &str = "1.0";

/// The CloudEvents headers of an event: `ce_specversion`, `ce_id`, `ce_source`, `ce_type`,
/// `ce_time`, `ce_subject` (what the event is about, its key: the room, conversation, call,
/// task…, when it has one), `ce_dataschema` (the `$id` of its JSON Schema) and `content-type`.
pub fn header_pairs(event: &Event<'_>) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("ce_specversion".into(), SPEC_VERSION.into()),
        ("ce_id".into(), event.id.hyphenated().to_string()),
        (
            "ce_source".into(),
            format!("zegocloud://apps/{}", event.app_id),
        ),
        (
            "ce_type".into(),
            format!("com.zegocloud.{}", event.kind.name),
        ),
        ("ce_time".into(), rfc3339(event.time_ms())),
        (
            "ce_dataschema".into(),
            crate::event::schema::id_of(event.kind),
        ),
        ("content-type".into(), CONTENT_TYPE.into()),
    ];
    if let Some(subject) = event.partition_key.as_deref() {
        pairs.push(("ce_subject".into(), subject.to_owned()));
    }
    pairs
}

/// A record already encoded, as the spool and the dead-letter file keep it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutgoingRecord {
    pub event_id: Uuid,
    pub topic: String,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub payload: String,
}

impl OutgoingRecord {
    /// The record of an event whose JSON encoding is `payload`.
    pub fn for_event(event: &Event<'_>, topics: &TopicMap, payload: Vec<u8>) -> Self {
        OutgoingRecord {
            event_id: event.id,
            topic: topics.topic(event.kind).to_string(),
            key: event.partition_key.as_deref().map(str::to_owned),
            headers: header_pairs(event),
            payload: String::from_utf8(payload).expect("events serialize to UTF-8"),
        }
    }
}

pub fn headers_for(event: &Event<'_>) -> OwnedHeaders {
    owned_headers(&header_pairs(event))
}

/// Record headers from `(name, value)` pairs: the CloudEvents headers of an event, or those a
/// spooled or dead-lettered record kept.
pub fn owned_headers<'a, K, V, I>(pairs: I) -> OwnedHeaders
where
    K: AsRef<str> + 'a,
    V: AsRef<str> + 'a,
    I: IntoIterator<Item = &'a (K, V)>,
    I::IntoIter: ExactSizeIterator,
{
    let pairs = pairs.into_iter();
    let capacity = pairs.len();
    pairs.fold(
        OwnedHeaders::new_with_capacity(capacity),
        |headers, (key, value)| {
            headers.insert(Header {
                key: key.as_ref(),
                value: Some(value.as_ref()),
            })
        },
    )
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
