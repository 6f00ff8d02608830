//! Which topic each event type goes to: `{prefix}.{type}` unless overridden.

use std::sync::Arc;

use crate::event::catalog::{self, EventType};

/// Topic of every event type, fixed at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMap {
    /// Same order as [`catalog::ALL`].
    topics: Vec<Arc<str>>,
}

impl TopicMap {
    /// Builds the map from a prefix and `(variable, topic)` overrides such as
    /// `("ZEGO_BRIDGE_TOPIC_ROOM_CLOSED", "rooms-closed")`. An error names the variable.
    pub fn new(prefix: &str, overrides: &[(String, String)]) -> Result<Self, (String, String)> {
        let prefix_variable = "ZEGO_BRIDGE_TOPIC_PREFIX";
        let mut topics: Vec<Arc<str>> = catalog::ALL
            .iter()
            .map(|kind| Arc::from(format!("{prefix}.{}", kind.name)))
            .collect();
        for topic in &topics {
            validate(topic).map_err(|message| (prefix_variable.to_owned(), message))?;
        }
        for (variable, topic) in overrides {
            let Some(index) = catalog::ALL
                .iter()
                .position(|kind| kind.topic_variable() == *variable)
            else {
                let known: Vec<String> = catalog::ALL
                    .iter()
                    .map(|kind| kind.topic_variable())
                    .collect();
                return Err((
                    variable.clone(),
                    format!(
                        "names no event type; topic overrides are {}",
                        known.join(", ")
                    ),
                ));
            };
            let topic = topic.trim();
            validate(topic).map_err(|message| (variable.clone(), message))?;
            topics[index] = Arc::from(topic);
        }
        Ok(TopicMap { topics })
    }

    pub fn topic(&self, kind: &EventType) -> &Arc<str> {
        let index = catalog::ALL
            .iter()
            .position(|known| known.name == kind.name)
            .expect("every event type is in the catalog");
        &self.topics[index]
    }

    /// Every `(type, topic)` pair, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static EventType, &Arc<str>)> {
        catalog::ALL.iter().copied().zip(&self.topics)
    }

    /// The distinct topic names (two types may share one through overrides).
    pub fn distinct(&self) -> Vec<String> {
        let mut names: Vec<String> = self.topics.iter().map(|topic| topic.to_string()).collect();
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
        let map = TopicMap::new(
            "zego",
            &[("ZEGO_BRIDGE_TOPIC_UNRECOGNIZED".into(), "dead-ends".into())],
        )
        .unwrap();
        assert_eq!(
            &**map.topic(&catalog::MEDIA_RECORDED),
            "zego.media.recorded"
        );
        assert_eq!(&**map.topic(&catalog::UNRECOGNIZED), "dead-ends");
        assert_eq!(map.distinct().len(), catalog::ALL.len());
        assert_eq!(
            TopicMap::new("a b", &[]).unwrap_err().0,
            "ZEGO_BRIDGE_TOPIC_PREFIX"
        );
        assert!(TopicMap::new("z", &[("ZEGO_BRIDGE_TOPIC_NOPE".into(), "x".into())]).is_err());
    }
}
