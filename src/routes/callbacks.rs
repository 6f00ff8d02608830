//! `POST /v1/callbacks` (RTC) and `POST /v1/callbacks/{product}`: read the body within its
//! limits, hand it to the [`Pipeline`], answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, BytesMut};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::field::Empty;
use tracing::Instrument;

use crate::error::{CallbackError, Reply, Unavailable};
use crate::ingest::{Outcome, Pipeline, SuccessReply};
use crate::internal_events::{CallbackRefused, InternalEvent};
use crate::zego::zim::BeforeSendAnswer;
use crate::zego::{Encoding, Product};

use super::request_log::{RequestLogging, REQUEST_ID};

/// The `tracing` target of the access log (`ZEGO_BRIDGE_ACCESS_LOG`), to filter on.
pub const ACCESS_LOG_TARGET: &str = "zego_kafka_bridge::access";

/// How much of a request body the server reads, how long it waits for it, and how many bytes
/// of bodies all requests together may hold at once.
pub struct BodyLimits {
    max_bytes: usize,
    read_timeout: Duration,
    /// Bytes of request bodies all requests together may hold in memory, as permits.
    budget: Arc<Semaphore>,
    /// The same for ZIM's path alone: its `before_send_msg` refused means a chat message not
    /// sent, so a flood on the other paths must not take the memory its bodies need.
    zim_budget: Arc<Semaphore>,
}

impl BodyLimits {
    pub fn new(max_bytes: usize, read_timeout: Duration, max_buffered_bytes: usize) -> Self {
        BodyLimits {
            max_bytes,
            read_timeout,
            budget: Arc::new(Semaphore::new(max_buffered_bytes)),
            zim_budget: Arc::new(Semaphore::new(max_buffered_bytes)),
        }
    }

    /// The budget the bodies on the path of `product` count against.
    fn budget_for(&self, product: Product) -> &Arc<Semaphore> {
        match product {
            Product::Zim => &self.zim_budget,
            _ => &self.budget,
        }
    }

    /// The largest body taken on the path of `product`: the setting, or more where the vendor's
    /// own callbacks are larger ([`Product::body_limit_floor`]).
    pub fn max_bytes_for(&self, product: Product) -> usize {
        self.max_bytes.max(product.body_limit_floor())
    }
}

pub async fn receive_rtc_callback(
    request: HttpRequest,
    payload: web::Payload,
    pipeline: web::Data<Pipeline>,
    limits: web::Data<BodyLimits>,
    logging: web::Data<RequestLogging>,
) -> HttpResponse {
    receive_callback(request, payload, Product::Rtc, pipeline, limits, logging).await
}

pub async fn receive_product_callback(
    request: HttpRequest,
    payload: web::Payload,
    segment: web::Path<String>,
    pipeline: web::Data<Pipeline>,
    limits: web::Data<BodyLimits>,
    logging: web::Data<RequestLogging>,
) -> HttpResponse {
    match Product::from_path_segment(&segment) {
        Some(product) => {
            receive_callback(request, payload, product, pipeline, limits, logging).await
        }
        None => not_found().await,
    }
}

async fn receive_callback(
    request: HttpRequest,
    payload: web::Payload,
    product: Product,
    pipeline: web::Data<Pipeline>,
    limits: web::Data<BodyLimits>,
    logging: web::Data<RequestLogging>,
) -> HttpResponse {
    // The callback's type, app and event id, recorded as they become known, carried by every
    // line logged for it. At debug level: an enabled span per request cost 8 µs of 48 per
    // callback flat out (scripts/bench, A/B), so the lines that matter at the default levels
    // (refusals, coercion failures) name the callback themselves.
    let span = tracing::debug_span!("callback", r#type = Empty, app_id = Empty, event_id = Empty);
    async move {
        let started = Instant::now();
        let _in_flight = pipeline.metrics().request_in_flight();
        let origin = logging.origin(&request);
        let outcome = receive(&request, payload, product, &pipeline, &limits).await;
        let mut response = match (&outcome.result, outcome.reply) {
            (Ok(_), SuccessReply::Verdict(verdict)) => {
                HttpResponse::Ok().json(BeforeSendAnswer::from(verdict))
            }
            (Ok(_), SuccessReply::One) => HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body("1"),
            (Ok(_), SuccessReply::Accepted) => Reply::respond(StatusCode::OK, "accepted"),
            (Err(err), _) => {
                CallbackRefused {
                    event_type: outcome.event_type,
                    app_id: outcome.app_id,
                    refusal: err.refusal(),
                    request_id: &origin.request_id,
                    client: origin.client,
                    log: logging.refusal_log(),
                }
                .emit(pipeline.metrics());
                err.error_response()
            }
        };
        let status = response.status().as_u16();
        pipeline
            .metrics()
            .callback_answered(outcome.event_type, status, started.elapsed());
        if logging.access_log() {
            tracing::info!(
                target: ACCESS_LOG_TARGET,
                request_id = %origin.request_id,
                client = origin.client.map(tracing::field::display),
                path = request.path(),
                status,
                r#type = outcome.event_type,
                app_id = outcome.app_id,
                duration_us = started.elapsed().as_micros() as u64,
                "callback request"
            );
        }
        if let Ok(value) = header::HeaderValue::from_str(&origin.request_id) {
            response.headers_mut().insert(REQUEST_ID.clone(), value);
        }
        response
    }
    .instrument(span)
    .await
}

async fn receive(
    request: &HttpRequest,
    payload: web::Payload,
    product: Product,
    pipeline: &Pipeline,
    limits: &BodyLimits,
) -> Outcome {
    let declared = match declared_encoding(request) {
        Ok(declared) => declared,
        Err(err) => return Outcome::unidentified(err),
    };
    match read_body(
        request,
        payload,
        limits.max_bytes_for(product),
        limits.budget_for(product),
        limits,
        pipeline,
    )
    .await
    {
        // The body's bytes count against the budget until the pipeline is done with them.
        Ok((body, _budget)) => pipeline.accept(&body, declared, product).await,
        Err(err) => Outcome::unidentified(err),
    }
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
    let media_type = text.split(';').next().unwrap_or("").trim();
    let is = |name: &str| media_type.eq_ignore_ascii_case(name);
    let bytes = media_type.as_bytes();
    let json_suffix = bytes.len() >= 5 && bytes[bytes.len() - 5..].eq_ignore_ascii_case(b"+json");
    if is("application/json") || is("text/json") || json_suffix {
        Ok(Some(Encoding::Json))
    } else if is("application/x-www-form-urlencoded") {
        Ok(Some(Encoding::Form))
    } else if ["", "text/plain", "application/octet-stream", "*/*"]
        .into_iter()
        .any(is)
    {
        Ok(None)
    } else {
        Err(CallbackError::UnsupportedMediaType(text.to_owned()))
    }
}

/// Reads the body within the size limit and the time limit. Its memory counts against the
/// budget of all bodies in memory at once as it is allocated, which follows the bytes that
/// arrive, never what `Content-Length` declares: a client that declares 64 KiB and sends nothing
/// holds nothing (130 such connections once took the whole budget and starved real callbacks).
/// The budget is held until the returned permit is dropped: past it the request gets 503 at
/// once and its connection is closed, so that thousands of slow uploads cannot take the pod's
/// memory.
async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    shared: &Arc<Semaphore>,
    limits: &BodyLimits,
    pipeline: &Pipeline,
) -> Result<(BytesMut, OwnedSemaphorePermit), CallbackError> {
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > limit) {
        return Err(CallbackError::TooLarge { limit });
    }
    let over_budget = || pipeline.unavailable(Unavailable::BodyBudget);
    // The body never grows past what was declared (actix-http frames it by Content-Length).
    let ceiling = declared_length.unwrap_or(limit);
    let mut budget = shared
        .clone()
        .try_acquire_many_owned(0)
        .map_err(|_| over_budget())?;
    let mut body = BytesMut::new();
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| CallbackError::BodyRead(err.to_string()))?;
            let needed = body.len() + chunk.len();
            if needed > limit {
                return Err(CallbackError::TooLarge { limit });
            }
            if needed > body.capacity() {
                // Doubling, as a Vec grows, but never past what was declared: one allocation
                // for a body that comes in one chunk, a few for one that trickles in.
                let target = needed
                    .max(body.capacity().saturating_mul(2))
                    .max(MIN_BODY_ALLOCATION)
                    .min(ceiling.max(needed));
                charge(&mut budget, target, shared).map_err(|_| over_budget())?;
                body.reserve(target - body.len());
                // Whatever the allocator rounded up to is charged too.
                charge(&mut budget, body.capacity(), shared).map_err(|_| over_budget())?;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(limits.read_timeout, read)
        .await
        .map_err(|_| CallbackError::BodyTimeout)??;
    Ok((body, budget))
}

/// The smallest allocation for a body: most callbacks are under 2 KiB.
const MIN_BODY_ALLOCATION: usize = 4096;

/// Makes `budget` hold at least `bytes` permits, or fails when the budget has not that many.
fn charge(
    budget: &mut OwnedSemaphorePermit,
    bytes: usize,
    shared: &Arc<Semaphore>,
) -> Result<(), tokio::sync::TryAcquireError> {
    let more = bytes.saturating_sub(budget.num_permits());
    if more > 0 {
        let more = u32::try_from(more).unwrap_or(u32::MAX);
        budget.merge(shared.clone().try_acquire_many_owned(more)?);
    }
    Ok(())
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
    let paths: Vec<String> = Product::ALL
        .iter()
        .filter(|product| product.refusal().is_none())
        .map(|product| format!("{} ({})", product.callback_path(), product.title()))
        .collect();
    Reply::respond(
        StatusCode::NOT_FOUND,
        &format!(
            "not found: ZEGOCLOUD callbacks go to POST {}",
            paths.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn declared(content_type: &str) -> Result<Option<Encoding>, CallbackError> {
        declared_encoding(
            &TestRequest::default()
                .insert_header((header::CONTENT_TYPE, content_type))
                .to_http_request(),
        )
    }

    #[test]
    fn the_content_type_names_the_encoding_in_any_case_and_with_parameters() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " text/json ",
            "application/cloudevents+json",
            "application/VND.ZEGO+JSON;v=1",
        ] {
            assert!(matches!(declared(json), Ok(Some(Encoding::Json))), "{json}");
        }
        for form in [
            "application/x-www-form-urlencoded",
            "APPLICATION/X-WWW-FORM-URLENCODED; charset=UTF-8",
        ] {
            assert!(matches!(declared(form), Ok(Some(Encoding::Form))), "{form}");
        }
        for generic in [
            "",
            "text/plain",
            "Application/Octet-Stream",
            "*/*",
            "; charset=x",
        ] {
            assert!(matches!(declared(generic), Ok(None)), "{generic}");
        }
        for refused in [
            "application/xml",
            "json",
            "image/png",
            "text/jsonx",
            "x+jsonx",
        ] {
            match declared(refused) {
                Err(CallbackError::UnsupportedMediaType(named)) => assert_eq!(named, refused),
                other => panic!("{refused}: {other:?}"),
            }
        }
        assert!(declared_encoding(&TestRequest::default().to_http_request())
            .is_ok_and(|declared| declared.is_none()));
    }
}
