//! How an event is written as a Kafka record: JSON value, CloudEvents 1.0 binary-mode headers.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat};
use rdkafka::message::{Header, OwnedHeaders};
use uuid::Uuid;

use super::topics::TopicMap;
use crate::event::catalog;
use crate::event::Event;

pub const CONTENT_TYPE: &str = "application/json";
const SPEC_VERSION: &str = "1.0";

/// The CloudEvents headers of an event: `ce_specversion`, `ce_id`, `ce_source`, `ce_type`,
/// `ce_time`, `ce_subject` (what the event is about, its key: the room, conversation, call,
/// task…, when it has one), `ce_dataschema` (the `$id` of its JSON Schema) and `content-type`.
pub struct CloudEventHeaders<'a> {
    id: String,
    source: String,
    time: String,
    of_type: &'static TypeHeaders,
    subject: Option<&'a str>,
}

/// The headers whose value only depends on the event's type, made once per type.
struct TypeHeaders {
    ce_type: String,
    dataschema: String,
}

static TYPE_HEADERS: LazyLock<Vec<TypeHeaders>> = LazyLock::new(|| {
    catalog::ALL
        .iter()
        .map(|kind| TypeHeaders {
            ce_type: format!("com.zegocloud.{}", kind.name),
            dataschema: crate::event::schema::id_of(kind),
        })
        .collect()
});

impl<'a> CloudEventHeaders<'a> {
    pub fn of(event: &'a Event<'_>) -> Self {
        CloudEventHeaders {
            id: event.id.hyphenated().to_string(),
            source: format!("zegocloud://apps/{}", event.app_id),
            time: rfc3339(event.time_ms()),
            of_type: &TYPE_HEADERS[catalog::index_of(event.kind)],
            subject: event.partition_key.as_deref(),
        }
    }

    /// `(name, value)`, in a fixed order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("ce_specversion", SPEC_VERSION),
            ("ce_id", &self.id),
            ("ce_source", &self.source),
            ("ce_type", &self.of_type.ce_type),
            ("ce_time", &self.time),
            ("ce_dataschema", &self.of_type.dataschema),
            ("content-type", CONTENT_TYPE),
        ]
        .into_iter()
        .chain(self.subject.map(|subject| ("ce_subject", subject)))
    }
}

/// The CloudEvents headers of an event as owned pairs, as the spool and the dead-letter file
/// keep them.
pub fn header_pairs(event: &Event<'_>) -> Vec<(String, String)> {
    CloudEventHeaders::of(event)
        .pairs()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The bytes an event's record carries besides its value and the lengths of value and record:
/// its key and its headers' names and values, each with its length as a varint, as a broker
/// counts them in a batch.
pub fn record_framing_bytes(event: &Event<'_>) -> usize {
    use super::event_size::varint_bytes;
    let key = event
        .partition_key
        .as_deref()
        .map_or(1, |key| varint_bytes(key.len()) + key.len());
    CloudEventHeaders::of(event)
        .pairs()
        .map(|(name, value)| {
            varint_bytes(name.len()) + name.len() + varint_bytes(value.len()) + value.len()
        })
        .sum::<usize>()
        + key
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
    owned_headers(CloudEventHeaders::of(event).pairs())
}

/// Record headers from `(name, value)` pairs: the CloudEvents headers of an event, or those a
/// spooled or dead-lettered record kept.
pub fn owned_headers<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> OwnedHeaders
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let pairs = pairs.into_iter();
    let (fewest, most) = pairs.size_hint();
    pairs.fold(
        OwnedHeaders::new_with_capacity(most.unwrap_or(fewest)),
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
