//! Liveness and readiness, on the admin listener.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::error::Reply;
use crate::ingest::Readiness;

/// The process is up and serving HTTP, and nothing it cannot recover from in place is wrong.
pub async fn healthz(readiness: web::Data<Readiness>) -> HttpResponse {
    match readiness.liveness_problem() {
        None => Reply::respond(StatusCode::OK, "alive"),
        Some(problem) => Reply::respond(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not alive: {problem}"),
        ),
    }
}

/// The bridge can accept callbacks now: Kafka is reachable and it is not shutting down.
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    match readiness.not_ready_reasons() {
        reasons if reasons.is_empty() => Reply::respond(StatusCode::OK, "ready"),
        reasons => Reply::respond(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: {}", reasons.join("; ")),
        ),
    }
}
