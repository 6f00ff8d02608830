//! Things worth both a log line and a metric, each one typed event whose [`emit`] does both, so
//! that the two cannot drift apart. Events about one callback are emitted inside its request's
//! span (`type`, `app_id`, `event_id`, at debug level); those logged at the default levels name
//! the callback themselves.
//!
//! [`emit`]: InternalEvent::emit

use std::fmt::Display;
use std::net::IpAddr;
use std::path::Path;

use tracing::{debug, error, info, warn};
use uuid::Uuid;

use crate::metrics::Metrics;

pub trait InternalEvent {
    fn emit(self, metrics: &Metrics);
}

/// How a callback was refused, as far as logs and metrics care (`CallbackError::refusal`).
pub enum Refusal<'a> {
    /// 401: not signed right, or replayed.
    Signature {
        reason: &'static str,
        error: &'a dyn Display,
    },
    /// 503: cannot take it now.
    Unavailable {
        reason: &'static str,
        error: &'a dyn Display,
    },
    /// 413 for an event Kafka's producer could never take.
    EventTooLarge { error: &'a dyn Display },
    /// A callback sent to the path of another product, or of a product the bridge does not
    /// take: the console's URL is wrong, which only its owner can fix.
    Misdirected { error: &'a dyn Display },
    /// Any other 4xx: the client's mistake.
    BadRequest { error: &'a dyn Display },
}

/// A callback answered with an error status. The line names the app (whose console to look
/// at), the client and the request id; never a secret. Every refusal is counted; its line is
/// logged only when the request's log sampler admits it, so that a flood of bad requests cannot
/// flood the logs.
pub struct CallbackRefused<'a> {
    /// [`crate::metrics::NO_TYPE`] when it was refused before its type was known.
    pub event_type: &'static str,
    pub app_id: Option<u64>,
    pub refusal: Refusal<'a>,
    pub request_id: &'a str,
    pub client: Option<IpAddr>,
    /// `Some(n)`: log it, saying that `n` refusals before it were not logged; `None`: count it
    /// only.
    pub log: Option<u64>,
}

impl InternalEvent for CallbackRefused<'_> {
    fn emit(self, metrics: &Metrics) {
        let (event_type, app_id, request_id) = (self.event_type, self.app_id, self.request_id);
        let client = self.client.map(tracing::field::display);
        match self.refusal {
            Refusal::Signature { reason, .. } => metrics.signature_refused(reason),
            Refusal::Unavailable { reason, .. } => metrics.unavailable(reason),
            Refusal::EventTooLarge { .. }
            | Refusal::Misdirected { .. }
            | Refusal::BadRequest { .. } => {}
        }
        let Some(not_logged) = self.log else {
            return;
        };
        // Refusals held back since the last line logged (all counted in the metrics).
        let not_logged = (not_logged > 0).then_some(not_logged);
        match self.refusal {
            Refusal::Signature { reason, error } => {
                warn!(r#type = event_type, app_id, client, request_id, reason, error = %error,
                    not_logged, "callback refused");
            }
            Refusal::Unavailable { reason, error } => {
                warn!(r#type = event_type, app_id, client, request_id, reason, error = %error,
                    not_logged, "callback refused with 503");
            }
            Refusal::EventTooLarge { error } => {
                warn!(r#type = event_type, app_id, client, request_id, error = %error,
                    not_logged, "callback refused with 413");
            }
            Refusal::Misdirected { error } => {
                warn!(r#type = event_type, app_id, client, request_id, error = %error,
                    not_logged, "callback sent to the wrong path")
            }
            Refusal::BadRequest { error } => {
                info!(r#type = event_type, app_id, client, request_id, error = %error,
                    not_logged, "bad callback request")
            }
        }
    }
}

/// A declared field whose value had the wrong form: published as `null`, kept under `extra`.
pub struct FieldCoercionFailed<'a> {
    pub event_type: &'static str,
    pub event_id: Uuid,
    pub field: &'a str,
}

impl InternalEvent for FieldCoercionFailed<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.field_coercion_failed(self.event_type, self.field);
        warn!(
            r#type = self.event_type,
            event_id = %self.event_id,
            field = self.field,
            "field has an unexpected form: published as null, original kept under `extra`"
        );
    }
}

/// A retry of a callback accepted before, answered 200 without a second publish.
pub struct DuplicateCallback {
    pub event_type: &'static str,
}

impl InternalEvent for DuplicateCallback {
    fn emit(self, metrics: &Metrics) {
        metrics.duplicate(self.event_type);
        debug!("retry of an accepted callback: not published again");
    }
}

/// A signature that verified, presented with another callback than the one it was first used
/// with: one of the two bodies is forged (ZEGO's signature does not cover the body), and it
/// cannot be told which. The second is refused (401 when respelled, else 503); the first is
/// logged by its id, once per signature, so that an operator can look at what was published
/// under it.
pub struct SignatureReusedEvent {
    pub event_type: &'static str,
    pub event_id: Uuid,
    pub first_event_id: Uuid,
    /// `timestamp` and `nonce` spelled otherwise than at the first use.
    pub respelled: bool,
    /// Log it: the first other callback under this signature.
    pub log: bool,
}

impl InternalEvent for SignatureReusedEvent {
    fn emit(self, metrics: &Metrics) {
        metrics.signature_reused(self.respelled);
        if self.log {
            error!(
                r#type = self.event_type,
                event_id = %self.event_id,
                first_event_id = %self.first_event_id,
                respelled = self.respelled,
                "a signature that verified came with a second, different callback: the second \
                 was refused (respelled: a forgery, 401; else a replay, or ZEGO's nonce repeating \
                 within a second, 503), the first (first_event_id) was taken and may be a \
                 forgery"
            );
        }
    }
}

/// A signature found used for two callbacks after both were taken: one here, one on another
/// replica or before a restart (read from the used-signatures topic).
pub struct SignatureUsedTwice {
    /// The use read from the topic.
    pub event_id: Uuid,
    /// The use this replica took.
    pub first_event_id: Uuid,
    pub respelled: bool,
    /// Log it: the first conflict under this signature.
    pub log: bool,
}

impl InternalEvent for SignatureUsedTwice {
    fn emit(self, metrics: &Metrics) {
        metrics.signature_conflict();
        if self.log {
            error!(
                event_id = %self.first_event_id,
                other_event_id = %self.event_id,
                respelled = self.respelled,
                "a signature was used for two different callbacks, one here and one on another \
                 replica (or before a restart), and both were taken: one of the two events may \
                 be a forgery (ZEGO does not sign the body)"
            );
        }
    }
}

/// The dead-letter file stopped, or started again, taking writes. While it cannot, ack mode
/// `queued` refuses callbacks (503) rather than acknowledge events it could lose.
pub struct DeadLetterFileState<'a> {
    pub path: &'a Path,
    /// `None`: writable again.
    pub error: Option<&'a std::io::Error>,
}

impl InternalEvent for DeadLetterFileState<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.set_dead_letter_writable(self.error.is_none());
        match self.error {
            Some(error) => error!(
                file = %self.path.display(),
                %error,
                "the dead-letter file cannot take a write: in ack mode queued, callbacks are \
                 refused (503) until it can (check the disk under ZEGO_BRIDGE_DEAD_LETTER_PATH)"
            ),
            None => info!(
                file = %self.path.display(),
                "the dead-letter file takes writes again"
            ),
        }
    }
}

/// An acknowledged event that failed for good, saved to the dead-letter file.
pub struct EventDeadLettered<'a> {
    pub event_id: Uuid,
    pub topic: &'a str,
    pub error: &'a str,
    pub file: &'a Path,
}

impl InternalEvent for EventDeadLettered<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.dead_lettered(self.topic);
        error!(
            event_id = %self.event_id,
            topic = self.topic,
            error = self.error,
            dead_letter_file = %self.file.display(),
            "an acknowledged event could not be delivered; saved to the dead-letter file \
             (publish it again with `zego-kafka-bridge replay`)"
        );
    }
}

/// An acknowledged event that failed for good and could not be dead-lettered either.
pub struct AcknowledgedEventLost<'a> {
    pub event_id: Uuid,
    pub topic: &'a str,
    pub error: &'a str,
    pub write_error: &'a dyn Display,
}

impl InternalEvent for AcknowledgedEventLost<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.dead_letter_write_failed();
        error!(
            event_id = %self.event_id,
            topic = self.topic,
            error = self.error,
            write_error = %self.write_error,
            "an acknowledged event could not be delivered nor written to the dead-letter file: \
             IT IS LOST"
        );
    }
}

/// The producer was replaced after a fatal error.
pub struct ProducerRebuilt {
    pub rebuilds: u64,
}

impl InternalEvent for ProducerRebuilt {
    fn emit(self, metrics: &Metrics) {
        metrics.producer_rebuilt();
        info!(
            rebuilds = self.rebuilds,
            "the Kafka producer was rebuilt; re-sending what the old one held"
        );
    }
}

/// The spool ended in an incomplete record (never acknowledged), cut off at start.
pub struct SpoolTornTailCut<'a> {
    pub segment: &'a Path,
    pub offset: u64,
    pub bytes: usize,
    pub quarantine: &'a Path,
}

impl InternalEvent for SpoolTornTailCut<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.spool_quarantined("torn_tail", self.bytes as u64);
        warn!(
            segment = %self.segment.display(),
            offset = self.offset,
            bytes = self.bytes,
            quarantine = %self.quarantine.display(),
            "the spool ended in an incomplete record (a write cut short by a crash, never \
             acknowledged): cut off, its bytes kept in quarantine"
        );
    }
}

/// Damaged bytes in the spool, skipped; `quarantine` is where they were copied, or why not.
pub struct SpoolDamageQuarantined<'a> {
    pub segment: u64,
    pub offset: u64,
    pub bytes: usize,
    pub why: &'a str,
    pub quarantine: Result<&'a Path, &'a std::io::Error>,
}

impl InternalEvent for SpoolDamageQuarantined<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.spool_quarantined("damaged", self.bytes as u64);
        match self.quarantine {
            Ok(path) => error!(
                segment = self.segment,
                offset = self.offset,
                bytes = self.bytes,
                quarantine = %path.display(),
                why = self.why,
                "damaged bytes in the spool: copied to quarantine and skipped; every intact \
                 record around them is still published"
            ),
            Err(err) => error!(
                segment = self.segment,
                offset = self.offset,
                bytes = self.bytes,
                error = %err,
                why = self.why,
                "damaged bytes in the spool: skipped, and they could not be copied to \
                 quarantine; every intact record around them is still published"
            ),
        }
    }
}

/// The spool's checkpoint cannot be right: the whole spool is published again.
pub struct SpoolCheckpointDistrusted<'a> {
    pub dir: &'a Path,
    pub why: &'a str,
}

impl InternalEvent for SpoolCheckpointDistrusted<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.spool_checkpoint_distrusted();
        error!(
            dir = %self.dir.display(),
            why = self.why,
            "the spool's checkpoint cannot be right and is not trusted: publishing the whole \
             spool again (consumers see duplicates, deduplicated on the event id)"
        );
    }
}

/// A spool write failed. Logged when the failure begins, counted every time.
pub struct SpoolWriteFailed<'a> {
    pub dir: &'a Path,
    pub error: &'a str,
    pub began: bool,
}

impl InternalEvent for SpoolWriteFailed<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.spool_write_failed();
        if self.began {
            error!(
                error = self.error,
                dir = %self.dir.display(),
                "the spool cannot write to disk; refusing callbacks with 503 until it can"
            );
        }
    }
}

/// Acknowledged events destroyed by damage to the spool's files while the bridge ran.
pub struct SpoolEventsDestroyed {
    pub destroyed: u64,
}

impl InternalEvent for SpoolEventsDestroyed {
    fn emit(self, metrics: &Metrics) {
        metrics.spool_destroyed(self.destroyed);
        error!(
            destroyed = self.destroyed,
            "acknowledged events in the spool were destroyed by damage to its files while the \
             bridge ran; their bytes are in quarantine/"
        );
    }
}

/// The callback secrets file changed and its secrets are now the ones in use.
pub struct CallbackSecretsReloaded<'a> {
    pub path: &'a Path,
    /// How many secrets the file holds (never what they are).
    pub secrets: usize,
}

impl InternalEvent for CallbackSecretsReloaded<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.callback_secrets_reloaded(self.secrets);
        info!(
            file = %self.path.display(),
            secrets = self.secrets,
            "callback secrets reloaded"
        );
    }
}

/// The callback secrets file changed but cannot be used: the secrets in use stay.
pub struct CallbackSecretsReloadFailed<'a> {
    pub error: &'a dyn Display,
}

impl InternalEvent for CallbackSecretsReloadFailed<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.callback_secrets_reload_failed();
        error!(
            error = %self.error,
            "the callback secrets file cannot be used; the secrets in use stay until it is fixed"
        );
    }
}

/// A retry of dead letters finished with one claim: each letter delivered, kept in the file for
/// the next pass, or rejected for good.
pub struct DeadLettersRetried<'a> {
    pub claim: &'a Path,
    pub delivered: usize,
    pub kept: usize,
    pub rejected: usize,
    pub rejected_file: &'a Path,
}

impl InternalEvent for DeadLettersRetried<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.dead_letters_retried(self.delivered, self.kept, self.rejected);
        if self.rejected > 0 {
            error!(
                claim = %self.claim.display(),
                delivered = self.delivered,
                kept = self.kept,
                rejected = self.rejected,
                rejected_file = %self.rejected_file.display(),
                "dead letters retried; some can never be delivered (too large, not authorized or \
                 unreadable) and were moved to the rejected file: fix the cause, then \
                 `zego-kafka-bridge replay` it"
            );
        } else {
            info!(
                claim = %self.claim.display(),
                delivered = self.delivered,
                kept = self.kept,
                "dead letters retried"
            );
        }
    }
}
