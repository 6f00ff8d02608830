//! The callback pipeline: one owner for a callback from its bytes to its acknowledgement.
//!
//! [`Pipeline::accept`] decodes, verifies, normalizes and deduplicates, then hands the event to
//! the [`Acknowledger`] of the configured ack mode, chosen once at start by
//! [`acknowledger::for_mode`]. [`Readiness`] says whether callbacks can be taken now. The HTTP
//! routes sit on top and know only HTTP.

pub mod acknowledger;
mod pipeline;
mod readiness;

pub use acknowledger::{Acknowledger, ShutdownReport};
pub use pipeline::{signature_window, Accepted, Outcome, Pipeline, PipelineSettings, SuccessReply};
pub use readiness::Readiness;
