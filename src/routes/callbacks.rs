//! `POST /v1/callbacks`: decode, verify, normalize, enqueue, answer.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, BytesMut};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use tracing::{debug, warn};

use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::configuration::AckMode;
use crate::error::{CallbackError, Reply, Unavailable};
use crate::event::{catalog, normalize};
use crate::kafka::{header_pairs, OutgoingRecord, PublishError};
use crate::metrics::NO_TYPE;
use crate::startup::AppState;
use crate::zego::{
    check_clock_skew, sniff, CommonFields, Encoding, MalformedCallback, RawCallback,
};

pub async fn receive_callback(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let _in_flight = state.metrics.request_in_flight();
    let mut seen = Seen {
        event_type: NO_TYPE,
        app_id: None,
    };
    let response = match accept(&request, payload, &state, &mut seen).await {
        Ok(()) => Reply::respond(StatusCode::OK, "accepted"),
        Err(err) => {
            report_refusal(&state, &err, &seen);
            err.error_response()
        }
    };
    state.metrics.callback_answered(
        seen.event_type,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// What was learnt of a callback before it was accepted or refused, for the refusal's log line.
struct Seen {
    event_type: &'static str,
    app_id: Option<u64>,
}

async fn accept(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    seen: &mut Seen,
) -> Result<(), CallbackError> {
    if state.is_shutting_down() {
        return Err(state.unavailable(Unavailable::ShuttingDown));
    }
    let declared = declared_encoding(request)?;
    let (body, _budget) = read_body(request, payload, state).await?;
    // A body labelled as a form that is really a JSON object is read as JSON: senders mislabel.
    let encoding = match declared {
        Some(Encoding::Json) => Encoding::Json,
        _ => sniff(&body),
    };
    let callback = RawCallback::decode(&body, encoding).map_err(MalformedCallback::from)?;
    let common = CommonFields::read(&callback.root)?;
    let kind = catalog::for_zego_event(&common.event);
    seen.event_type = kind.name;
    seen.app_id = Some(common.app_id);

    common.verify(&state.secrets)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    check_clock_skew(
        common.timestamp,
        now.as_secs() as i64,
        state.max_clock_skew_secs,
    )?;

    let event = normalize(&callback, &common, now.as_millis() as i64);
    for field in &event.coercion_failures {
        state.metrics.field_coercion_failed(kind.name, field);
        warn!(
            event_id = %event.id,
            r#type = kind.name,
            field,
            "field has an unexpected form: published as null, original kept under `extra`"
        );
    }
    state.recent.check_signature(
        &common.timestamp_text,
        &common.nonce,
        &common.signature,
        event.id,
    )?;
    if state.recent.is_duplicate(event.id) {
        state.metrics.duplicate(kind.name);
        debug!(event_id = %event.id, r#type = kind.name, "retry of an accepted callback: not published again");
        return Ok(());
    }
    let payload = event.to_json();
    if payload.len() > state.max_event_bytes {
        return Err(CallbackError::EventTooLarge {
            size: payload.len(),
            limit: state.max_event_bytes,
        });
    }
    let publisher = &state.publisher;
    let unavailable = |err: PublishError| state.unavailable(err.into());
    match state.ack_mode {
        AckMode::Queued => {
            publisher.check_accepting(kind, true).map_err(unavailable)?;
            publisher
                .publish(&event, &payload, None)
                .map_err(unavailable)?;
        }
        AckMode::Delivered => {
            publisher.check_accepting(kind, true).map_err(unavailable)?;
            let (delivered, outcome) = oneshot::channel();
            publisher
                .publish(&event, &payload, Some(delivered))
                .map_err(unavailable)?;
            match tokio::time::timeout(state.delivery_timeout, outcome).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(failure))) => {
                    return Err(unavailable(PublishError::NotDelivered(failure.error)))
                }
                Ok(Err(_)) => {
                    return Err(unavailable(PublishError::NotDelivered(
                        "the producer dropped the event".to_owned(),
                    )))
                }
                Err(_) => {
                    return Err(unavailable(PublishError::DeliveryTimeout(
                        state.delivery_timeout.as_millis(),
                    )))
                }
            }
        }
        AckMode::Spooled => {
            publisher
                .check_accepting(kind, false)
                .map_err(unavailable)?;
            let spool = state.spool.as_ref().expect("a spool in spooled mode");
            let record = OutgoingRecord {
                event_id: event.id,
                topic: publisher.topics().topic(kind).to_string(),
                key: event.partition_key.as_deref().map(str::to_owned),
                headers: header_pairs(&event),
                payload: String::from_utf8(payload).expect("events serialize to UTF-8"),
            };
            spool
                .append(&record)
                .await
                .map_err(|err| state.unavailable(err.into()))?;
        }
    }
    state.recent.remember_accepted(event.id);
    debug!(
        event_id = %event.id,
        r#type = kind.name,
        encoding = encoding.as_str(),
        "callback accepted"
    );
    Ok(())
}

/// The encoding the Content-Type names; `None` when it is missing or generic and the body
/// itself must tell.
fn declared_encoding(request: &HttpRequest) -> Result<Option<Encoding>, CallbackError> {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| CallbackError::UnsupportedMediaType("<not text>".into()))?;
    let media_type = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" | "text/json" => Ok(Some(Encoding::Json)),
        other if other.ends_with("+json") => Ok(Some(Encoding::Json)),
        "application/x-www-form-urlencoded" => Ok(Some(Encoding::Form)),
        "" | "text/plain" | "application/octet-stream" | "*/*" => Ok(None),
        _ => Err(CallbackError::UnsupportedMediaType(text.to_owned())),
    }
}

/// Reads the body within the size limit and the time limit. Its bytes count against the budget
/// of all bodies in memory at once, held until the returned permit is dropped: past the budget
/// the request gets 503 at once and its connection is closed, so that thousands of slow uploads
/// cannot take the pod's memory.
async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
) -> Result<(BytesMut, OwnedSemaphorePermit), CallbackError> {
    let limit = state.max_body_bytes;
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > limit) {
        return Err(CallbackError::TooLarge { limit });
    }
    let over_budget = || state.unavailable(Unavailable::BodyBudget);
    let capacity = declared_length.unwrap_or(4096).min(limit);
    let mut budget = state
        .body_budget
        .clone()
        .try_acquire_many_owned(capacity as u32)
        .map_err(|_| over_budget())?;
    let mut body = BytesMut::with_capacity(capacity);
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| CallbackError::BodyRead(err.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(CallbackError::TooLarge { limit });
            }
            let needed = (body.len() + chunk.len()).saturating_sub(budget.num_permits());
            if needed > 0 {
                let more = state
                    .body_budget
                    .clone()
                    .try_acquire_many_owned(needed as u32)
                    .map_err(|_| over_budget())?;
                budget.merge(more);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(state.body_read_timeout, read)
        .await
        .map_err(|_| CallbackError::BodyTimeout)??;
    Ok((body, budget))
}

fn report_refusal(state: &AppState, err: &CallbackError, seen: &Seen) {
    let event_type = seen.event_type;
    match err {
        CallbackError::Refused(refusal) => {
            state.metrics.signature_refused(refusal.reason());
            // The app id names whose console to look at; a secret is never logged.
            warn!(
                r#type = event_type,
                app_id = seen.app_id,
                reason = refusal.reason(),
                error = %refusal,
                "callback refused"
            );
        }
        CallbackError::Unavailable { cause, .. } => {
            state.metrics.unavailable(cause.reason());
            warn!(r#type = event_type, app_id = seen.app_id, error = %cause, "callback refused with 503");
        }
        CallbackError::EventTooLarge { .. } => {
            warn!(r#type = event_type, app_id = seen.app_id, error = %err, "callback refused with 413");
        }
        other => {
            debug!(r#type = event_type, app_id = seen.app_id, error = %other, "bad callback request")
        }
    }
}

pub async fn method_not_allowed() -> HttpResponse {
    let mut response = Reply::respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "callbacks are sent with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}

pub async fn not_found() -> HttpResponse {
    Reply::respond(
        StatusCode::NOT_FOUND,
        "not found: ZEGO callbacks go to POST /v1/callbacks",
    )
}
