//! Every way a callback request can fail, and the one place they become HTTP statuses.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::internal_events::Refusal;
use crate::kafka::PublishError;
use crate::spool::SpoolError;
use crate::zego::{MalformedCallback, Product, SignatureRefusal};

/// The reply body for every answer: `{"code": <HTTP status>, "message": "…"}`.
#[derive(Debug, Serialize)]
pub struct Reply<'a> {
    pub code: u16,
    pub message: &'a str,
}

impl Reply<'_> {
    pub fn respond(status: StatusCode, message: &str) -> HttpResponse {
        HttpResponse::build(status).json(Reply {
            code: status.as_u16(),
            message,
        })
    }
}

/// Why the bridge cannot accept a callback right now; ZEGO should retry later.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("the bridge is shutting down")]
    ShuttingDown,
    #[error("too many request bodies are being received at once (ZEGO_BRIDGE_HTTP_MAX_BUFFERED_BODY_BYTES)")]
    BodyBudget,
    #[error("this timestamp, nonce and signature came with another callback first (a nonce that repeated, or a replay): a retry signed afresh is taken")]
    SignatureInUse,
    #[error("the dead-letter file cannot take a write, and an event Kafka then refused would be lost: {0}")]
    DeadLetterUnwritable(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl Unavailable {
    pub fn reason(&self) -> &'static str {
        match self {
            Unavailable::ShuttingDown => "shutting_down",
            Unavailable::BodyBudget => "body_budget",
            Unavailable::SignatureInUse => "signature_in_use",
            Unavailable::DeadLetterUnwritable(_) => "dead_letter_unwritable",
            Unavailable::Publish(err) => err.reason(),
            Unavailable::Spool(err) => err.reason(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("unsupported Content-Type {0:?}: send application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType(String),
    #[error("body is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error(transparent)]
    EventTooLarge(#[from] crate::kafka::EventTooLarge),
    #[error("timed out waiting for the request body")]
    BodyTimeout,
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("malformed callback: {0}")]
    Malformed(#[from] MalformedCallback),
    #[error("this is a {} callback, sent to the path of {} ({}): set its callback URL in the ZEGOCLOUD console to {}", .sent_by.title(), .path.title(), .path.callback_path(), .sent_by.callback_path())]
    WrongProduct { sent_by: Product, path: Product },
    #[error("{}", .0.refusal().unwrap_or("this product's callbacks are not supported"))]
    ProductNotSupported(Product),
    #[error("{} callbacks are not taken by this bridge: ZEGO_BRIDGE_PRODUCTS does not list `{}`", .0.title(), .0.name())]
    ProductNotServed(Product),
    #[error("callback refused: {0}")]
    Refused(#[from] SignatureRefusal),
    #[error("cannot accept the callback now, retry later: {cause}")]
    Unavailable {
        cause: Unavailable,
        retry_after_secs: u64,
    },
}

impl CallbackError {
    /// What logs and metrics record of this refusal.
    pub fn refusal(&self) -> Refusal<'_> {
        match self {
            CallbackError::Refused(refusal) => Refusal::Signature {
                reason: refusal.reason(),
                error: refusal,
            },
            CallbackError::Unavailable { cause, .. } => Refusal::Unavailable {
                reason: cause.reason(),
                error: cause,
            },
            CallbackError::EventTooLarge(_) => Refusal::EventTooLarge { error: self },
            CallbackError::WrongProduct { .. }
            | CallbackError::ProductNotSupported(_)
            | CallbackError::ProductNotServed(_) => Refusal::Misdirected { error: self },
            _ => Refusal::BadRequest { error: self },
        }
    }
}

impl ResponseError for CallbackError {
    fn status_code(&self) -> StatusCode {
        match self {
            CallbackError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            CallbackError::TooLarge { .. } | CallbackError::EventTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            CallbackError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            CallbackError::BodyRead(_)
            | CallbackError::Malformed(_)
            | CallbackError::WrongProduct { .. } => StatusCode::BAD_REQUEST,
            // Not a passing failure: no retry of it will be taken.
            CallbackError::ProductNotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            // The path exists for other deployments: not this one's.
            CallbackError::ProductNotServed(_) => StatusCode::NOT_FOUND,
            CallbackError::Refused(_) => StatusCode::UNAUTHORIZED,
            CallbackError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = Reply::respond(self.status_code(), &self.to_string());
        if let CallbackError::Unavailable {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if matches!(
            self,
            CallbackError::TooLarge { .. }
                | CallbackError::BodyTimeout
                | CallbackError::Unavailable {
                    cause: Unavailable::BodyBudget,
                    ..
                }
        ) {
            // The rest of the body was not read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::KafkaError;

    use super::*;
    use crate::kafka::DeliveryFailure;
    use crate::metrics::UNAVAILABLE_REASONS;

    /// Every cause of a 503, by construction of each variant: a new one must be listed in the
    /// metric's HELP (and so in the operators' docs).
    #[test]
    fn every_unavailable_reason_is_listed_in_the_metric() {
        let causes = [
            Unavailable::ShuttingDown,
            Unavailable::BodyBudget,
            Unavailable::SignatureInUse,
            Unavailable::DeadLetterUnwritable("full".into()),
            PublishError::QueueFull.into(),
            PublishError::Unreachable.into(),
            PublishError::TopicMissing("t".into()).into(),
            PublishError::Fatal("f".into()).into(),
            PublishError::Refused("r".into()).into(),
            PublishError::Producer(KafkaError::Canceled).into(),
            PublishError::NotDelivered(DeliveryFailure(KafkaError::Canceled)).into(),
            PublishError::Dropped.into(),
            PublishError::DeliveryTimeout(1).into(),
            PublishError::NoSchema("t".into()).into(),
            SpoolError::Full.into(),
            SpoolError::Failed("disk".into()).into(),
            SpoolError::Closed.into(),
        ];
        for cause in &causes {
            assert!(UNAVAILABLE_REASONS.contains(&cause.reason()), "{cause:?}");
        }
        for listed in UNAVAILABLE_REASONS {
            assert!(
                causes.iter().any(|cause| cause.reason() == listed),
                "{listed} is listed but no cause has it"
            );
        }
    }
}
