//! `GET /metrics` in the Prometheus text format, on the admin listener.

use actix_web::{web, HttpResponse};

use crate::ingest::Readiness;
use crate::metrics::Metrics;

pub async fn metrics(readiness: web::Data<Readiness>, metrics: web::Data<Metrics>) -> HttpResponse {
    // Gauges that mirror state elsewhere are read at scrape time.
    readiness.refresh_gauges(&metrics);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
