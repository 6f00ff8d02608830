#![forbid(unsafe_code)]

// Measured under load (docs/BENCHMARKS.md): glibc's malloc took a sixth of the bridge's CPU,
// much of it consolidating memory that librdkafka's threads free after the HTTP worker
// allocated it. mimalloc handles such cross-thread frees cheaply.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    zego_kafka_bridge::cli::run()
}
