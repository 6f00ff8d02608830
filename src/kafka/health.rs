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
    /// Every configured topic is missing: nothing could be published, so the bridge is not
    /// ready (a few missing ones only refuse their own types).
    every_topic_missing: std::sync::atomic::AtomicBool,
}

impl Default for KafkaHealth {
    fn default() -> Self {
        KafkaHealth {
            // Unknown until the first probe: count as unreachable from the start.
            unreachable_since: Mutex::new(Some(Instant::now())),
            fatal: RwLock::default(),
            refused: RwLock::default(),
            missing_topics: RwLock::default(),
            every_topic_missing: std::sync::atomic::AtomicBool::new(false),
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

    pub fn has_missing_topics(&self) -> bool {
        !self.missing_topics.read().expect("health lock").is_empty()
    }

    pub fn is_every_topic_missing(&self) -> bool {
        self.every_topic_missing
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces the set of missing topics, out of `configured`; returns true when it changed.
    pub fn set_missing_topics(&self, missing: BTreeSet<String>, configured: usize) -> bool {
        self.every_topic_missing.store(
            configured > 0 && missing.len() >= configured,
            std::sync::atomic::Ordering::Release,
        );
        let mut current = self.missing_topics.write().expect("health lock");
        if **current == missing {
            return false;
        }
        *current = Arc::new(missing);
        true
    }
}

/// When Kafka is asked for its metadata next. Every `interval` while all is well. Every second
/// while Kafka is unreachable: asking costs the cluster nothing then, and its return is seen at
/// once. While a topic is missing, after 1 s, then 2, 4… up to `interval`: one broker's view can
/// lag the cluster's just after a topic is created or the broker restarts, and is corrected
/// within a second, while a topic left uncreated on purpose soon costs no more than the usual
/// probe (each asks for every topic of the cluster, which on a large one is not small).
#[derive(Debug)]
pub struct ProbeSchedule {
    interval: Duration,
    missing_wait: Duration,
}

impl ProbeSchedule {
    const RECHECK: Duration = Duration::from_secs(1);

    pub fn new(interval: Duration) -> Self {
        ProbeSchedule {
            interval,
            missing_wait: Self::RECHECK.min(interval),
        }
    }

    /// How long after a probe that left `health` as it is the next one is due.
    pub fn after_probe(&mut self, health: &KafkaHealth) -> Duration {
        self.next_wait(health.is_reachable(), health.has_missing_topics())
    }

    /// The pause between two checks of whether a probe is due: short enough that an outage
    /// librdkafka reports between probes is rechecked within a second.
    pub fn tick(&self) -> Duration {
        Self::RECHECK.min(self.interval)
    }

    fn next_wait(&mut self, reachable: bool, missing: bool) -> Duration {
        if !missing {
            self.missing_wait = self.tick();
        }
        if !reachable {
            // What is missing was learnt before the outage: its backoff waits for Kafka.
            return self.tick();
        }
        if !missing {
            return self.interval;
        }
        let wait = self.missing_wait;
        self.missing_wait = (wait * 2).min(self.interval);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_come_every_second_while_kafka_is_away_and_back_off_while_a_topic_is_missing() {
        let secs = Duration::from_secs;
        let mut schedule = ProbeSchedule::new(secs(5));
        assert_eq!(schedule.next_wait(true, false), secs(5));
        assert_eq!(schedule.next_wait(false, false), secs(1));
        assert_eq!(schedule.next_wait(false, true), secs(1));
        let missing: Vec<Duration> = (0..5).map(|_| schedule.next_wait(true, true)).collect();
        assert_eq!(missing, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
        assert_eq!(
            schedule.next_wait(false, true),
            secs(1),
            "unreachable: every second"
        );
        assert_eq!(
            schedule.next_wait(true, true),
            secs(5),
            "the backoff goes on"
        );
        assert_eq!(schedule.next_wait(true, false), secs(5));
        assert_eq!(
            schedule.next_wait(true, true),
            secs(1),
            "a topic missing anew starts again at a second"
        );
        let mut fast = ProbeSchedule::new(Duration::from_millis(200));
        assert_eq!(fast.tick(), Duration::from_millis(200));
        assert_eq!(fast.next_wait(true, true), Duration::from_millis(200));
        assert_eq!(fast.next_wait(false, false), Duration::from_millis(200));
    }

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
