//! Integration tests: the real bridge against a real broker (see `helpers`).

mod attacks;
mod callbacks;
mod errors;
mod helpers;
mod hostile;
mod kafka_cluster;
mod operations;
mod outages;
mod process;
mod products;
mod reliability;
mod routes;
mod schema_registry;
mod security;
mod sender;
mod spooled;
