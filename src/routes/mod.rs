//! HTTP endpoints: the public callback receiver and the admin endpoints.

mod callbacks;
mod health;
mod metrics;

pub use callbacks::{method_not_allowed, not_found, receive_callback};
pub use health::{healthz, readyz};
pub use metrics::metrics;
