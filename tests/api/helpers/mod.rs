//! The test harness, by job: the application in-process (`app`), Kafka (`broker`), the binary as
//! a process (`process`), load and loss accounting (`load`), the schema registry (`registry`).
//! Tests run the real application on port 0 against a real Kafka broker.
//!
//! The broker comes from `ZEGO_BRIDGE_TEST_BROKERS`, which `scripts/test` sets after starting
//! one. Every test gets its own topic prefix, so tests run in parallel without seeing each
//! other's events.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value as Json;
use tokio::task::JoinHandle;

use zego_kafka_bridge::configuration::Settings;
use zego_kafka_bridge::event::catalog::{self, EventType};
use zego_kafka_bridge::kafka::{self, TopicCreation, TopicLayout, TopicMap};
use zego_kafka_bridge::sender::{self, SignedCallback, Signing};
use zego_kafka_bridge::startup::{Application, ShutdownHandle, ShutdownReport, StartupError};
use zego_kafka_bridge::zego::Product;

mod app;
mod broker;
mod load;
mod process;
mod registry;

pub use app::*;
pub use broker::*;
pub use load::*;
pub use process::*;
pub use registry::*;
