//! `zego-bridge-bench`: the measuring tools behind `scripts/bench` (docs/BENCHMARKS.md).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

// The shipped binary's allocator, so that the baseline server is measured as the bridge is.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The demo secret a bridge without configured secrets accepts.
const DEMO_SECRET: &str = zego_kafka_bridge::configuration::DEMO_SECRET;

#[derive(Debug, Parser)]
#[command(
    name = "zego-bridge-bench",
    about = "Measuring tools for zego-kafka-bridge (see docs/BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load-test a bridge (or the baseline server) and report throughput and latency as JSON.
    Load(LoadArgs),
    /// Plain rdkafka producing the load's mix flat out: the Kafka side's limit.
    Produce(ProduceArgs),
    /// A bare HTTP server answering 200: the HTTP stack's limit, the yardstick for `load`.
    Baseline(BaselineArgs),
    /// The hot path per callback as a multiple of a fixed reference workload timed in the same
    /// process: a figure that shows a regression whatever the machine's speed that day.
    HotPath(HotPathArgs),
}

#[derive(Debug, Args)]
struct HotPathArgs {
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Milliseconds of each workload per round.
    #[arg(long, default_value_t = 200)]
    round_ms: u64,
    #[arg(long, default_value = "hot_path")]
    label: String,
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080/v1/callbacks")]
    url: String,
    #[arg(long, env = "ZEGO_SEND_SECRET", default_value = DEMO_SECRET, hide_default_value = true, hide_env_values = true)]
    secret: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Requests per second in total (default: flat out).
    #[arg(long)]
    rate: Option<u64>,
    /// Extra bytes in every body (an unknown field), to measure the cost of body size.
    #[arg(long, default_value_t = 0)]
    pad_bytes: usize,
    /// Read the topics back from these brokers: end-to-end latency and exactly-once check.
    #[arg(long)]
    brokers: Option<String>,
    #[arg(long, default_value = "zego")]
    topic_prefix: String,
    /// Create the topics first (with --brokers).
    #[arg(long)]
    create_topics: bool,
    /// A name for this run in the JSON report.
    #[arg(long, default_value = "run")]
    label: String,
}

#[derive(Debug, Args)]
struct ProduceArgs {
    #[arg(long)]
    brokers: String,
    #[arg(long, default_value = "zego")]
    topic_prefix: String,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value = "produce")]
    label: String,
}

#[derive(Debug, Args)]
struct BaselineArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Load(args) => load(args),
        Command::Produce(args) => report(zego_bridge_bench::produce_flat_out(
            &args.brokers,
            &args.topic_prefix,
            Duration::from_secs(args.duration),
            args.label,
        )),
        Command::HotPath(args) => report(zego_bridge_bench::hot_path_ratio(
            args.rounds,
            Duration::from_millis(args.round_ms),
            args.label,
        )),
        Command::Baseline(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a Tokio runtime");
            match runtime.block_on(zego_bridge_bench::baseline_server(
                args.listen,
                args.workers,
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("zego-bridge-bench baseline: {err}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn load(args: LoadArgs) -> ExitCode {
    // One thread for the load: the machine's other core is left to the server under test.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let result = runtime.block_on(async {
        if args.create_topics {
            let brokers = args
                .brokers
                .as_deref()
                .ok_or("--create-topics needs --brokers")?;
            zego_bridge_bench::create_topics(brokers, &args.topic_prefix, 3).await?;
        }
        zego_bridge_bench::run(zego_bridge_bench::LoadOptions {
            url: args.url,
            secret: args.secret,
            connections: args.connections.max(1),
            duration: Duration::from_secs(args.duration),
            rate: args.rate,
            pad_bytes: args.pad_bytes,
            brokers: args.brokers,
            topic_prefix: args.topic_prefix,
            label: args.label,
        })
        .await
    });
    let lost = result.as_ref().is_ok_and(|report| {
        report
            .end_to_end
            .as_ref()
            .is_some_and(|e2e| e2e.missing > 0)
    });
    match report(result) {
        // Acknowledged events missing from Kafka fail the run.
        ExitCode::SUCCESS if lost => ExitCode::from(1),
        code => code,
    }
}

/// Prints a report as one JSON line, or the error.
fn report<T: serde::Serialize>(result: Result<T, String>) -> ExitCode {
    match result {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string(&report).expect("a report serializes")
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("zego-bridge-bench: {err}");
            ExitCode::from(2)
        }
    }
}
