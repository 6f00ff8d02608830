//! What the bridge knows about Kafka right now: since when it has been unreachable, which
//! topics are missing, and whether the producer has failed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct KafkaHealth {
    /// `None` while reachable; otherwise since when no broker has been.
    unreachable_since: Mutex<Option<Instant>>,
    fatal: RwLock<Option<String>>,
    /// Kafka refused the bridge itself (authentication, TLS): no grace, nothing accepted.
    refused: RwLock<Option<String>>,
    missing_topics: RwLock<Arc<BTreeSet<String>>>,
}

impl Default for KafkaHealth {
    fn default() -> Self {
        KafkaHealth {
            // Unknown until the first probe: count as unreachable from the start.
            unreachable_since: Mutex::new(Some(Instant::now())),
            fatal: RwLock::default(),
            refused: RwLock::default(),
            missing_topics: RwLock::default(),
        }
    }
}

impl KafkaHealth {
    pub fn is_reachable(&self) -> bool {
        self.lock_since().is_none()
    }

    /// True while no broker has been unreachable for `grace` or longer. A short blip keeps the
    /// bridge accepting (the queue absorbs it); a real outage turns callbacks away with 503.
    pub fn is_available(&self, grace: Duration) -> bool {
        self.refusal().is_none()
            && self
                .lock_since()
                .is_none_or(|since| since.elapsed() < grace)
    }

    /// Records a successful contact; returns true if Kafka was unreachable until now.
    pub fn mark_reachable(&self) -> bool {
        self.refused.write().expect("health lock").take();
        self.lock_since().take().is_some()
    }

    /// Why Kafka refuses the bridge's connections (wrong credentials, an untrusted
    /// certificate), if it does.
    pub fn refusal(&self) -> Option<String> {
        self.refused.read().expect("health lock").clone()
    }

    /// Records that Kafka refuses the bridge; returns true if it did not until now.
    pub fn mark_refused(&self, reason: String) -> bool {
        self.mark_unreachable();
        self.refused
            .write()
            .expect("health lock")
            .replace(reason)
            .is_none()
    }

    /// Records a failed contact; returns true if Kafka was reachable until now.
    pub fn mark_unreachable(&self) -> bool {
        let mut since = self.lock_since();
        let was_reachable = since.is_none();
        since.get_or_insert_with(Instant::now);
        was_reachable
    }

    fn lock_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.unreachable_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The producer's fatal error, if it has one and has not been rebuilt yet.
    pub fn fatal_error(&self) -> Option<String> {
        self.fatal.read().expect("health lock").clone()
    }

    pub fn set_fatal_error(&self, reason: String) {
        *self.fatal.write().expect("health lock") = Some(reason);
    }

    pub fn clear_fatal_error(&self) {
        *self.fatal.write().expect("health lock") = None;
    }

    pub fn is_topic_missing(&self, topic: &str) -> bool {
        self.missing_topics
            .read()
            .expect("health lock")
            .contains(topic)
    }

    /// Whether something is wrong that the next probe may find repaired: Kafka unreachable,
    /// or a configured topic missing.
    pub fn needs_recheck(&self) -> bool {
        !self.is_reachable() || !self.missing_topics.read().expect("health lock").is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_counts_from_its_first_failure() {
        let health = KafkaHealth::default();
        assert!(!health.is_reachable(), "unknown until probed");
        assert!(health.mark_reachable());
        assert!(health.is_available(Duration::ZERO));
        assert!(health.mark_unreachable());
        assert!(
            !health.mark_unreachable(),
            "the outage started at the first failure"
        );
        assert!(health.is_available(Duration::from_secs(60)));
        assert!(!health.is_available(Duration::ZERO));
        assert!(health.mark_reachable());
        assert!(health.is_available(Duration::ZERO));
    }
}
