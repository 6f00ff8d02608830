#![forbid(unsafe_code)]

// Measured under load (docs/BENCHMARKS.md): glibc's malloc took a sixth of the bridge's CPU,
// much of it consolidating memory that librdkafka's threads free after the HTTP worker
// allocated it. mimalloc handles such cross-thread frees cheaply. Its `no_thp` feature keeps
// transparent huge pages off, which otherwise raised peak RSS by about 14 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    zego_kafka_bridge::cli::run()
}
