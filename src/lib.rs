//! zego-kafka-bridge: receives signed ZEGOCLOUD callbacks over HTTP and publishes normalized
//! events to per-type Kafka topics.
#![forbid(unsafe_code)]

pub mod cli;
pub mod configuration;
pub mod dedup;
pub mod error;
pub mod event;
#[cfg(test)]
mod generated;
pub mod ingest;
pub mod internal_events;
pub mod kafka;
pub mod metrics;
pub mod replay;
pub mod routes;
pub mod samples;
pub mod secrets;
pub mod sender;
pub mod spool;
pub mod stack_replies;
pub mod startup;
pub mod telemetry;
pub mod zego;
