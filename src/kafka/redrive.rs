//! Dead letters sent again by the bridge itself once Kafka is back, so that an outage longer
//! than `message.timeout.ms` ends with nothing to do by hand.
//!
//! The file stays the durable record throughout: a pass claims what the file holds by renaming
//! it (new letters start a new file), publishes every letter of the claim and waits for
//! Kafka's acknowledgement of each, writes those that failed again back to the file (and those
//! no retry can deliver to `<file>.rejected`), and only then deletes the claim. A bridge that
//! stops during a pass finds the claim at its next start and retries it first: an event may
//! then reach Kafka twice (consumers deduplicate on its `id`), never zero times.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::internal_events::{DeadLettersRetried, InternalEvent};
use crate::kafka::dead_letter::{append_lines, sync_directory, DeadLetter, DeadLetterFile};
use crate::kafka::record::OutgoingRecord;
use crate::kafka::{DeliveryFailure, PublishError, Publisher};
use crate::metrics::Metrics;

/// Letters in flight at once during a retry: well within the producer's queue.
const IN_FLIGHT: usize = 1_000;
/// How long to wait for room in the producer's queue before giving a pass up.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(100);

/// What one claim's retry came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetryReport {
    /// Acknowledged by Kafka.
    pub delivered: usize,
    /// Failed again for the moment: back in the dead-letter file for the next pass.
    pub kept: usize,
    /// No retry can deliver them (or they are unreadable): moved to `<file>.rejected`.
    pub rejected: usize,
}

pub struct DeadLetterRetrier {
    publisher: Arc<Publisher>,
    file: Arc<DeadLetterFile>,
    metrics: Arc<Metrics>,
    interval: Duration,
}

impl DeadLetterRetrier {
    pub fn new(publisher: Arc<Publisher>, metrics: Arc<Metrics>, interval: Duration) -> Self {
        DeadLetterRetrier {
            file: publisher.dead_letter_file().clone(),
            publisher,
            metrics,
            interval,
        }
    }

    /// A pass every `interval` while Kafka is reachable, until the task is dropped.
    pub async fn run(self) {
        loop {
            tokio::time::sleep(self.interval).await;
            self.retry_all().await;
        }
    }

    /// One pass: leftover claims first, then what the file holds now. Skipped while Kafka is
    /// unreachable or refuses the bridge (the letters would only fail again).
    pub async fn retry_all(&self) -> RetryReport {
        let mut total = RetryReport::default();
        let health = self.publisher.health();
        if !health.is_reachable() || health.refusal().is_some() {
            return total;
        }
        let mut claims = match self.file.leftover_claims() {
            Ok(claims) => claims,
            Err(err) => {
                tracing::error!(error = %err, file = %self.file.path().display(),
                    "cannot list the dead-letter claims to retry");
                return total;
            }
        };
        match self.file.claim() {
            Ok(Some(claim)) => claims.push(claim),
            Ok(None) => {}
            Err(err) => tracing::error!(error = %err, file = %self.file.path().display(),
                "cannot claim the dead-letter file for a retry"),
        }
        for claim in claims {
            match self.retry_claim(&claim).await {
                Ok(report) => {
                    total.delivered += report.delivered;
                    total.kept += report.kept;
                    total.rejected += report.rejected;
                }
                Err(err) => {
                    // The claim stays: its letters are retried by the next pass (those already
                    // delivered again then reach Kafka twice, which consumers deduplicate).
                    tracing::error!(error = %err, claim = %claim.display(),
                        "a retry of dead letters stopped; the claim is kept for the next pass");
                }
            }
        }
        total
    }

    async fn retry_claim(&self, claim: &Path) -> std::io::Result<RetryReport> {
        let lines = DeadLetterFile::read_lines(claim)?;
        let mut report = RetryReport::default();
        let mut again: Vec<DeadLetter> = Vec::new();
        let mut rejected: Vec<String> = Vec::new();
        let mut lines = lines.into_iter().peekable();
        while lines.peek().is_some() {
            let mut waiting = Vec::with_capacity(IN_FLIGHT);
            for (raw, parsed) in lines.by_ref().take(IN_FLIGHT) {
                let letter = match parsed {
                    Ok(letter) => letter,
                    Err(reason) => {
                        tracing::error!(claim = %claim.display(), %reason,
                            "an unreadable dead-letter line is kept in the rejected file");
                        rejected.push(raw);
                        continue;
                    }
                };
                match self.send(&letter).await {
                    Ok(outcome) => waiting.push((letter, raw, outcome)),
                    Err(err) if err.is_permanent() => {
                        let letter = with_error(letter, &err.to_string());
                        rejected.push(serde_json::to_string(&letter).unwrap_or(raw));
                    }
                    Err(err) => again.push(with_error(letter, &err.to_string())),
                }
            }
            for (letter, raw, outcome) in waiting {
                match outcome.await {
                    Ok(Ok(())) => report.delivered += 1,
                    Ok(Err(failure)) if failure.is_permanent() => {
                        rejected.push(rejected_line(letter, &failure, raw));
                    }
                    Ok(Err(failure)) => again.push(with_error(letter, &failure.to_string())),
                    Err(_) => again.push(with_error(letter, "the producer dropped the event")),
                }
            }
        }
        report.kept = again.len();
        report.rejected = rejected.len();
        // Both on disk before the claim goes: a letter is always in one file or delivered.
        if !again.is_empty() {
            self.file.write_batch(&again)?;
        }
        append_lines(&self.file.rejected_path(), &rejected)?;
        std::fs::remove_file(claim)?;
        sync_directory(claim)?;
        DeadLettersRetried {
            claim,
            delivered: report.delivered,
            kept: report.kept,
            rejected: report.rejected,
            rejected_file: &self.file.rejected_path(),
        }
        .emit(&self.metrics);
        Ok(report)
    }

    /// Enqueues one letter, waiting for room in the producer's queue.
    async fn send(
        &self,
        letter: &DeadLetter,
    ) -> Result<oneshot::Receiver<Result<(), DeliveryFailure>>, PublishError> {
        let record = OutgoingRecord {
            event_id: letter
                .headers
                .get("ce_id")
                .and_then(|id| Uuid::parse_str(id).ok())
                .unwrap_or_default(),
            topic: letter.topic.clone(),
            key: letter.key.clone(),
            headers: letter
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            payload: letter.event.get().to_owned(),
        };
        for _ in 0..50 {
            let (waiter, outcome) = oneshot::channel();
            match self.publisher.publish_record(&record, waiter) {
                Ok(()) => return Ok(outcome),
                Err(PublishError::QueueFull) => tokio::time::sleep(QUEUE_FULL_PAUSE).await,
                Err(err) => return Err(err),
            }
        }
        Err(PublishError::QueueFull)
    }
}

/// The letter with the error of its latest try.
fn with_error(mut letter: DeadLetter, error: &str) -> DeadLetter {
    letter.error = error.to_owned();
    letter.failed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    letter
}

/// The line of a letter no retry can deliver, with the reason Kafka gave.
fn rejected_line(letter: DeadLetter, failure: &DeliveryFailure, raw: String) -> String {
    serde_json::to_string(&with_error(letter, &failure.to_string())).unwrap_or(raw)
}
