//! HTTP endpoints: the public callback receiver and the admin endpoints. Each listener's routes
//! are registered by one function, so that a test can mount them on an app of its own (with a
//! fake acknowledger behind the [`Pipeline`](crate::ingest::Pipeline)).
//!
//! The public app needs `web::Data<Pipeline>`, `web::Data<BodyLimits>` and
//! `web::Data<RequestLogging>`; the admin app `web::Data<Readiness>` and `web::Data<Metrics>`.

mod callbacks;
mod health;
mod metrics;
pub mod request_log;

use actix_web::web;

pub use callbacks::{BodyLimits, ACCESS_LOG_TARGET};
pub use request_log::RequestLogging;

/// The path ZEGOCLOUD's console is given for RTC callbacks; each other product's is below it
/// (`/v1/callbacks/zim`: see [`crate::zego::Product::callback_path`]).
pub const CALLBACKS_PATH: &str = "/v1/callbacks";

pub fn configure_public(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource(CALLBACKS_PATH)
                .route(web::post().to(callbacks::receive_rtc_callback))
                .default_service(web::to(callbacks::method_not_allowed)),
        )
        .service(
            web::resource(format!("{CALLBACKS_PATH}/{{product}}"))
                .route(web::post().to(callbacks::receive_product_callback))
                .default_service(web::to(callbacks::method_not_allowed)),
        )
        .default_service(web::to(callbacks::not_found));
}

pub fn configure_admin(config: &mut web::ServiceConfig) {
    config
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
}
