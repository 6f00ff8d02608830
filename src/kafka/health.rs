//! What the bridge knows about Kafka right now: reachable or not, which topics are missing,
//! and whether the producer has failed for good.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct KafkaHealth {
    reachable: AtomicBool,
    fatal: RwLock<Option<String>>,
    missing_topics: RwLock<Arc<BTreeSet<String>>>,
}

impl KafkaHealth {
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// Records reachability; returns the previous value so callers can log transitions once.
    pub fn set_reachable(&self, reachable: bool) -> bool {
        self.reachable.swap(reachable, Ordering::AcqRel)
    }

    /// The producer's fatal error, if it has one: it can no longer deliver anything.
    pub fn fatal_error(&self) -> Option<String> {
        self.fatal.read().expect("health lock").clone()
    }

    pub fn set_fatal_error(&self, reason: String) {
        *self.fatal.write().expect("health lock") = Some(reason);
    }

    pub fn is_topic_missing(&self, topic: &str) -> bool {
        self.missing_topics
            .read()
            .expect("health lock")
            .contains(topic)
    }

    pub fn missing_topics(&self) -> Arc<BTreeSet<String>> {
        self.missing_topics.read().expect("health lock").clone()
    }

    /// Replaces the set of missing topics; returns true when it changed.
    pub fn set_missing_topics(&self, missing: BTreeSet<String>) -> bool {
        let mut current = self.missing_topics.write().expect("health lock");
        if **current == missing {
            return false;
        }
        *current = Arc::new(missing);
        true
    }
}
