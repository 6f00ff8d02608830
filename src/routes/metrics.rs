//! `GET /metrics` in the Prometheus text format, on the admin listener.

use actix_web::{web, HttpResponse};

use crate::startup::AppState;

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Gauges that mirror state elsewhere are read at scrape time.
    state
        .metrics
        .set_queue_messages(i64::from(state.publisher.queue_depth()));
    state
        .metrics
        .set_ready(state.not_ready_reasons().is_empty());
    if let Some(spool) = &state.spool {
        let stats = spool.stats();
        state.metrics.set_spool(stats.bytes, stats.pending);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
