//! Which topic each event type goes to: `{prefix}.{type}` unless overridden.

use std::sync::Arc;

use crate::event::catalog::{self, EventType};
use crate::zego::ProductSet;

/// What the used-signatures topic's name adds to the prefix.
const USED_SIGNATURES_SUFFIX: &str = "bridge.used_signatures";

/// Topic of every event type, fixed at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMap {
    /// Same order as [`catalog::ALL`].
    topics: Vec<Arc<str>>,
    /// Whose topics are expected in Kafka: listed, created, probed.
    products: ProductSet,
    /// Where the replicas share the signatures they took: `{prefix}.bridge.used_signatures`.
    used_signatures: Arc<str>,
}

/// Why a topic map cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The prefix makes invalid topic names.
    #[error("{0}")]
    Prefix(String),
    /// The topic given for the type named `kind` is not a valid name.
    #[error("{reason}")]
    Override { kind: &'static str, reason: String },
}

impl TopicMap {
    /// Builds the map from a prefix and the topics given for some types.
    pub fn new(
        prefix: &str,
        overrides: &[(&'static EventType, String)],
    ) -> Result<Self, TopicError> {
        let mut topics: Vec<Arc<str>> = catalog::ALL
            .iter()
            .map(|kind| Arc::from(format!("{prefix}.{}", kind.name)))
            .collect();
        for topic in &topics {
            validate(topic).map_err(TopicError::Prefix)?;
        }
        for (kind, topic) in overrides {
            let topic = topic.trim();
            validate(topic).map_err(|reason| TopicError::Override {
                kind: kind.name,
                reason,
            })?;
            topics[catalog::index_of(kind)] = Arc::from(topic);
        }
        let used_signatures: Arc<str> = Arc::from(format!("{prefix}.{USED_SIGNATURES_SUFFIX}"));
        validate(&used_signatures).map_err(TopicError::Prefix)?;
        Ok(TopicMap {
            topics,
            products: ProductSet::ALL,
            used_signatures,
        })
    }

    /// The map of a bridge that serves `products` only: the others' topics are neither listed
    /// nor expected.
    pub fn serving(self, products: ProductSet) -> Self {
        TopicMap { products, ..self }
    }

    pub fn topic(&self, kind: &EventType) -> &Arc<str> {
        &self.topics[catalog::index_of(kind)]
    }

    /// Every `(type, topic)` pair of the products served, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static EventType, &Arc<str>)> {
        catalog::ALL
            .iter()
            .copied()
            .zip(&self.topics)
            .filter(|(kind, _)| self.products.serves(kind.product))
    }

    /// The topic where the replicas share the signatures they took (not an event topic).
    pub fn used_signatures(&self) -> &str {
        &self.used_signatures
    }

    /// The distinct topic names of the products served (two types may share one through
    /// overrides).
    pub fn distinct(&self) -> Vec<String> {
        let mut names: Vec<String> = self.iter().map(|(_, topic)| topic.to_string()).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Kafka's rules for a topic name.
fn validate(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic == "." || topic == ".." {
        return Err(format!("{topic:?} is not a valid Kafka topic name"));
    }
    if topic.len() > 249 {
        return Err(format!(
            "topic {topic:?} is longer than Kafka's 249 characters"
        ));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic {topic:?} contains {bad:?}; Kafka allows letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_errors() {
        let map = TopicMap::new("zego", &[(&catalog::UNRECOGNIZED, "dead-ends".into())]).unwrap();
        assert_eq!(
            &**map.topic(&catalog::MEDIA_RECORDED),
            "zego.media.recorded"
        );
        assert_eq!(&**map.topic(&catalog::UNRECOGNIZED), "dead-ends");
        assert_eq!(map.distinct().len(), catalog::ALL.len());
        let rtc = map.serving(ProductSet::parse("rtc").unwrap());
        assert!(rtc.distinct().contains(&"zego.media.recorded".to_owned()));
        assert!(!rtc
            .distinct()
            .iter()
            .any(|topic| topic.starts_with("zego.zim.")));
        assert!(rtc
            .iter()
            .all(|(kind, _)| kind.product == crate::zego::Product::Rtc));
        assert!(matches!(
            TopicMap::new("a b", &[]),
            Err(TopicError::Prefix(_))
        ));
        assert_eq!(
            TopicMap::new("z", &[(&catalog::ROOM_CLOSED, "bad topic!".into())]),
            Err(TopicError::Override {
                kind: "room.closed",
                reason: "topic \"bad topic!\" contains ' '; Kafka allows letters, digits, '.', '_' and '-'"
                    .into()
            })
        );
    }
}
