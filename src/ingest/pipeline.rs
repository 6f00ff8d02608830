//! From a callback's bytes to an acknowledged event: decode, verify, normalize, deduplicate,
//! hand over. Nothing here knows HTTP; the route reads the body and turns the outcome into an
//! answer.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, Span};

use super::acknowledger::Acknowledger;
use super::readiness::Readiness;
use crate::dedup::RecentCallbacks;
use crate::error::{CallbackError, Unavailable};
use crate::event::catalog::{self, Answer};
use crate::event::{normalize, EventType};
use crate::internal_events::{
    DuplicateCallback, FieldCoercionFailed, InternalEvent, SignatureReusedEvent,
};
use crate::kafka::{EventSizeLimits, SignatureUseLog};
use crate::metrics::{Metrics, NO_TYPE};
use crate::secrets::LiveSecrets;
use crate::zego::zim::BeforeSendVerdict;
use crate::zego::{
    check_clock_skew, classify, sniff, CommonFields, Encoding, MalformedCallback, Product,
    ProductSet, RawCallback, SignatureRefusal,
};

/// The pipeline's own settings.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Replaced while the bridge runs when they come from a file.
    pub secrets: Arc<LiveSecrets>,
    pub max_clock_skew_secs: u64,
    /// Recent event ids and signatures remembered (deduplication, replay defence).
    pub dedup_capacity: usize,
    /// The largest event the producer and each type's topic take: a larger one is refused
    /// with 413, never acknowledged and then lost.
    pub event_sizes: Arc<EventSizeLimits>,
    /// What a 503 tells ZEGO to wait before its retry.
    pub retry_after_secs: u64,
    /// The answer to ZIM's `before_send_msg`.
    pub zim_verdict: BeforeSendVerdict,
    /// The products whose callbacks are taken.
    pub products: ProductSet,
}

/// How long a signature is remembered after it was first seen, with this skew limit (`None`:
/// no skew check, no window). Any spelling of a signature can pass the skew check for as long
/// as the instant it names (within a second, whichever unit) is within the skew of the clock:
/// twice the skew, and the second.
pub fn signature_window(max_clock_skew_secs: u64) -> Option<Duration> {
    (max_clock_skew_secs > 0).then(|| Duration::from_secs(2 * max_clock_skew_secs + 1))
}

/// How a callback was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Handed to the acknowledger: it is the bridge's to deliver.
    Taken,
    /// A retry of a callback accepted before: answered as such, not published again.
    Retry,
}

/// What became of a callback, with what was learnt of it on the way (for the answer's metric
/// and log line).
#[derive(Debug)]
pub struct Outcome {
    /// The catalog's name of its type; [`NO_TYPE`] when it was refused before that was known.
    pub event_type: &'static str,
    pub app_id: Option<u64>,
    pub result: Result<Accepted, CallbackError>,
    /// What an accepted callback's 200 says, as its type's sender expects it.
    pub reply: SuccessReply,
}

impl Outcome {
    /// A refusal before anything of the callback was known.
    pub fn unidentified(error: CallbackError) -> Self {
        Outcome {
            event_type: NO_TYPE,
            app_id: None,
            result: Err(error),
            reply: SuccessReply::Accepted,
        }
    }
}

/// The body of the 200 for an accepted callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuccessReply {
    /// The bridge's JSON reply (`{"code":200,"message":"accepted"}`).
    Accepted,
    /// ZIM's `before_send_msg`: the decision its sender waits for.
    Verdict(BeforeSendVerdict),
    /// `1`: what the older page of RTC's recording callback asks for.
    One,
}

pub struct Pipeline {
    settings: PipelineSettings,
    recent: Arc<RecentCallbacks>,
    /// Where first uses of signatures are shared with the other replicas, once set.
    signature_log: OnceLock<Arc<SignatureUseLog>>,
    acknowledger: Arc<dyn Acknowledger>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    pub fn new(
        settings: PipelineSettings,
        acknowledger: Arc<dyn Acknowledger>,
        readiness: Arc<Readiness>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Pipeline {
            recent: Arc::new(RecentCallbacks::new(
                settings.dedup_capacity,
                signature_window(settings.max_clock_skew_secs),
            )),
            signature_log: OnceLock::new(),
            settings,
            acknowledger,
            readiness,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The memory of recent callbacks, for the task that adds the other replicas' uses.
    pub fn recent_callbacks(&self) -> Arc<RecentCallbacks> {
        self.recent.clone()
    }

    /// From now on, every first use of a signature is also written to `log`; and the uses this
    /// pod took before it could share (Kafka away at start, the topic missing) are written now.
    pub fn share_signatures_through(&self, log: Arc<SignatureUseLog>) {
        if self.signature_log.set(log.clone()).is_ok() {
            for used in self.recent.own_uses() {
                log.share(&used);
            }
        }
    }

    /// The refusal for when a callback cannot be taken now.
    pub fn unavailable(&self, cause: Unavailable) -> CallbackError {
        CallbackError::Unavailable {
            cause,
            retry_after_secs: self.settings.retry_after_secs,
        }
    }

    /// Takes one callback `body`, posted to the path of `product`, whose Content-Type named
    /// `declared` (`None`: the body tells). Records `type`, `app_id` and `event_id` in the
    /// current span as they become known.
    pub async fn accept(
        &self,
        body: &[u8],
        declared: Option<Encoding>,
        product: Product,
    ) -> Outcome {
        if product.refusal().is_some() {
            return Outcome::unidentified(CallbackError::ProductNotSupported(product));
        }
        // A body labelled as a form that is really a JSON object is read as JSON: senders
        // mislabel.
        let encoding = match declared {
            Some(Encoding::Json) => Encoding::Json,
            _ => sniff(body),
        };
        let callback = match RawCallback::decode(body, encoding) {
            Ok(callback) => callback,
            Err(err) => return Outcome::unidentified(MalformedCallback::from(err).into()),
        };
        // The path says which product's console sent it; a body that plainly belongs to
        // another product means that console was given the wrong URL.
        let product = match classify(&callback.root) {
            Some(sender) if sender.refusal().is_some() => {
                return Outcome::unidentified(CallbackError::ProductNotSupported(sender))
            }
            Some(sender) if !product.takes(sender) => {
                return Outcome::unidentified(CallbackError::WrongProduct {
                    sent_by: sender,
                    path: product,
                })
            }
            Some(sender) => sender,
            None => product,
        };
        if !self.settings.products.serves(product) {
            return Outcome::unidentified(CallbackError::ProductNotServed(product));
        }
        let common = match CommonFields::read_for(&callback.root, product) {
            Ok(common) => common,
            Err(err) => return Outcome::unidentified(err.into()),
        };
        let kind = catalog::resolve(product, &common.event).0;
        let span = Span::current();
        span.record("type", kind.name);
        span.record("app_id", common.app_id);
        // While shutting down, callbacks are refused so that ZEGO retries them on another pod;
        // ZIM's before_send_msg is answered with its verdict until the process ends: its sender
        // does not wait for another pod, and by default a refusal means the message is not sent.
        let result = if self.readiness.is_shutting_down() && kind.answer != Answer::ZimVerdict {
            Err(self.unavailable(Unavailable::ShuttingDown))
        } else {
            self.take(&callback, &common, product, kind).await
        };
        if result.is_ok() {
            debug!(encoding = encoding.as_str(), "callback accepted");
        }
        Outcome {
            event_type: kind.name,
            app_id: Some(common.app_id),
            reply: match kind.answer {
                Answer::ZimVerdict => SuccessReply::Verdict(self.settings.zim_verdict),
                Answer::ReceiptOne => SuccessReply::One,
                Answer::Receipt => SuccessReply::Accepted,
            },
            result,
        }
    }

    async fn take(
        &self,
        callback: &RawCallback<'_>,
        common: &CommonFields<'_>,
        product: Product,
        kind: &'static EventType,
    ) -> Result<Accepted, CallbackError> {
        common.verify(self.settings.secrets.current().for_product(product))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // Only once the signature holds: an unsigned request must not move the clock's picture.
        self.metrics.clock_offset(
            product.name(),
            (now.as_millis() as i64 - common.sent_at_ms) as f64 / 1000.0,
        );
        check_clock_skew(
            common.sent_at_secs(),
            now.as_secs() as i64,
            self.settings.max_clock_skew_secs,
        )?;

        let event = normalize(callback, common, product, now.as_millis() as i64);
        Span::current().record("event_id", tracing::field::display(event.id));
        for field in &event.coercion_failures {
            FieldCoercionFailed {
                event_type: kind.name,
                event_id: event.id,
                field,
            }
            .emit(&self.metrics);
        }
        match self.recent.check_signature(
            &common.timestamp_text,
            &common.nonce,
            &common.signature,
            event.id,
        ) {
            Ok(held) => {
                self.metrics.used_signatures(held.held, held.forgot_one);
                if let (Some(used), Some(log)) = (held.first_use, self.signature_log.get()) {
                    log.share(&used);
                }
            }
            Err(reused) => {
                SignatureReusedEvent {
                    event_type: kind.name,
                    event_id: event.id,
                    first_event_id: reused.first_event_id,
                    respelled: reused.respelled,
                    log: reused.first_conflict,
                }
                .emit(&self.metrics);
                // Respelled, it is a forgery. Spelled as before, it may be ZEGO's own: two
                // callbacks of one app in one second whose random nonces matched (the vendor's
                // RTC samples carry six digits). A 503 lets ZEGO's retry, if signed afresh,
                // through; a 401 would not. A `before_send_msg` so spelled gets its verdict (a
                // refusal is a message not sent), but its event is not published: it may be
                // the forgery.
                if !reused.respelled && kind.answer == Answer::ZimVerdict {
                    return Ok(Accepted::Retry);
                }
                return Err(if reused.respelled {
                    SignatureRefusal::Replayed.into()
                } else {
                    self.unavailable(Unavailable::SignatureInUse)
                });
            }
        }
        if self.recent.is_duplicate(event.id) {
            DuplicateCallback {
                event_type: kind.name,
            }
            .emit(&self.metrics);
            return Ok(Accepted::Retry);
        }
        let payload = event.to_json();
        // A verdict is answered whatever the size: the producer then refuses the event, and it is
        // dead-lettered under its id with the reason, rather than its message held by a 413.
        if kind.answer != Answer::ZimVerdict {
            self.settings.event_sizes.check(
                kind.name,
                &payload,
                crate::kafka::record_framing_bytes(&event),
            )?;
        }
        match kind.answer {
            // ZIM waits about 2.5 s for the verdict and then fails the message: the event is
            // handed over without waiting for Kafka, and never refused.
            Answer::ZimVerdict => self.acknowledger.take_unrefused(&event, payload).await,
            Answer::Receipt | Answer::ReceiptOne => self
                .acknowledger
                .acknowledge(&event, payload)
                .await
                .map_err(|cause| self.unavailable(cause))?,
        }
        self.recent.remember_accepted(event.id);
        Ok(Accepted::Taken)
    }
}
