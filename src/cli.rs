//! Command line: `serve` (the default), `send`, `sign`, `topics`, `healthcheck`, `replay`,
//! `bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::configuration::{Settings, DEMO_SECRET};
use crate::sender::{self, Outgoing, Signing};
use crate::startup::Application;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "zego-kafka-bridge",
    version,
    about = "Receives signed ZEGOCLOUD callbacks and publishes normalized events to Kafka",
    long_about = "Receives signed ZEGOCLOUD callbacks and publishes normalized events to Kafka.\n\n\
                  Without a subcommand it serves, configured by ZEGO_BRIDGE_* environment variables \
                  (see the README)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge (the default).
    Serve,
    /// Sign callbacks as ZEGO does and POST them to a bridge.
    Send(SendArgs),
    /// Print the signature ZEGO would send for a timestamp and nonce.
    Sign(SignArgs),
    /// Load-test a bridge (or the baseline server) and report throughput and latency.
    Bench(BenchArgs),
    /// Plain rdkafka producing the bench mix flat out: the Kafka side's limit for `bench`.
    #[command(hide = true)]
    ProduceBench(ProduceBenchArgs),
    /// A bare HTTP server answering 200, the yardstick for `bench`.
    #[command(hide = true)]
    BaselineServer(BaselineArgs),
    /// List the topics the bridge publishes to (as configured by ZEGO_BRIDGE_TOPIC_*), and with
    /// --create create the missing ones on ZEGO_BRIDGE_KAFKA_BROKERS.
    Topics(TopicsArgs),
    /// Exit 0 when the bridge's admin endpoint answers 2xx (a container health check: the
    /// runtime image has no shell or curl).
    Healthcheck(HealthcheckArgs),
    /// Publish the events of a dead-letter file again (brokers and librdkafka settings from
    /// the same ZEGO_BRIDGE_* variables as the service).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
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
struct TopicsArgs {
    /// Create the topics that do not exist yet (brokers and librdkafka settings from the same
    /// ZEGO_BRIDGE_* variables as the service).
    #[arg(long)]
    create: bool,
    /// Partitions of a created topic. One room's events share a key, so they stay ordered
    /// whatever the count.
    #[arg(long, default_value_t = 6, requires = "create")]
    partitions: i32,
    /// Replication factor of a created topic (3 for a production cluster; 1 for a single broker).
    #[arg(long, default_value_t = 3, requires = "create")]
    replication_factor: i32,
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    #[arg(long, default_value = "http://127.0.0.1:9090/readyz")]
    url: String,
}

#[derive(Debug, Args)]
struct ProduceBenchArgs {
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

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The dead-letter file (ZEGO_BRIDGE_DEAD_LETTER_PATH of the bridge that wrote it).
    file: PathBuf,
}

#[derive(Debug, Args)]
struct SendArgs {
    /// Where to post.
    #[arg(long, default_value = "http://127.0.0.1:8080/v1/callbacks")]
    url: String,
    /// Callback secret to sign with (the demo secret matches a bridge started without any).
    #[arg(long, env = "ZEGO_SEND_SECRET", default_value = DEMO_SECRET, hide_default_value = true, hide_env_values = true)]
    secret: String,
    /// Send one bundled sample, by event (`room_close`) or file name (`room_close.form.txt`).
    #[arg(long, conflicts_with = "file")]
    sample: Option<String>,
    /// Send this file (JSON or form) instead of the bundled samples.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Replace the AppID in every callback.
    #[arg(long)]
    app_id: Option<u64>,
    /// Encode JSON callbacks as forms where they have no nested objects.
    #[arg(long)]
    form: bool,
    /// On failure, retry as ZEGO does: after 2, 4, 8, 16 and 32 seconds.
    #[arg(long)]
    zego_retries: bool,
}

#[derive(Debug, Args)]
struct SignArgs {
    #[arg(long, env = "ZEGO_SEND_SECRET", hide_env_values = true)]
    secret: String,
    /// The `timestamp` value exactly as sent.
    #[arg(long)]
    timestamp: String,
    /// The `nonce` value exactly as sent.
    #[arg(long)]
    nonce: String,
}

/// Parses the command line and runs the command; the exit code says whether it worked.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Send(args) => send(args),
        Command::Replay(args) => replay(&args.file),
        Command::Topics(args) => topics(args),
        Command::Healthcheck(args) => healthcheck(&args.url),
        Command::Bench(args) => bench(args),
        Command::ProduceBench(args) => {
            match crate::bench::produce_flat_out(
                &args.brokers,
                &args.topic_prefix,
                std::time::Duration::from_secs(args.duration),
                args.label,
            ) {
                Ok(report) => {
                    println!(
                        "{}",
                        serde_json::to_string(&report).expect("a report serializes")
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("produce-bench: {err}");
                    ExitCode::from(1)
                }
            }
        }
        Command::BaselineServer(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a Tokio runtime");
            match runtime.block_on(crate::bench::baseline_server(args.listen, args.workers)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("baseline-server: {err}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Sign(args) => {
            println!(
                "{}",
                crate::zego::sign(&args.secret, &args.timestamp, &args.nonce)
            );
            ExitCode::SUCCESS
        }
    }
}

fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("zego-kafka-bridge: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = telemetry::init(settings.log_format, &settings.log_level) {
        eprintln!("zego-kafka-bridge: configuration error: {err}");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let application = match Application::build(settings).await {
            Ok(application) => application,
            Err(err) => {
                tracing::error!(error = %err, "cannot start");
                eprintln!("zego-kafka-bridge: cannot start: {err}");
                return ExitCode::from(1);
            }
        };
        match application.run_until_stopped().await {
            Ok(report) if report.undelivered == 0 => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(3),
            Err(err) => {
                tracing::error!(error = %err, "server failed");
                ExitCode::from(1)
            }
        }
    })
}

fn send(args: SendArgs) -> ExitCode {
    let outgoing = match &args.file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(body) => Ok(vec![Outgoing {
                name: path.display().to_string(),
                body,
            }]),
            Err(err) => Err(format!("cannot read {}: {err}", path.display())),
        },
        None => sender::bundled(args.sample.as_deref()),
    };
    let outgoing = match outgoing {
        Ok(outgoing) => outgoing,
        Err(err) => {
            eprintln!("zego-kafka-bridge send: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = current_thread_runtime();
    let accepted = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        let mut accepted = 0;
        for callback in &outgoing {
            let nonce = sender::random_nonce();
            let signing = Signing {
                nonce: &nonce,
                app_id: args.app_id,
                as_form: args.form,
                ..Signing::now(&args.secret)
            };
            let signed = match sender::sign_callback(&callback.body, &signing) {
                Ok(signed) => signed,
                Err(err) => {
                    println!("{}: not sent: {err}", callback.name);
                    continue;
                }
            };
            let delays: &[std::time::Duration] = if args.zego_retries {
                &sender::ZEGO_RETRY_DELAYS
            } else {
                &[]
            };
            let delivery = sender::post(&client, &args.url, &signed, delays, |failed, delay| {
                println!(
                    "{}: attempt {} failed ({}), retrying in {}s",
                    callback.name,
                    failed.attempts,
                    failed
                        .status
                        .map_or("no answer".to_owned(), |status| status.to_string()),
                    delay.as_secs()
                );
            })
            .await;
            let status = delivery
                .status
                .map_or("no answer".to_owned(), |status| status.to_string());
            println!("{}: {status} {}", callback.name, delivery.body.trim());
            if delivery.succeeded() {
                accepted += 1;
            }
        }
        accepted
    });
    println!("{accepted} of {} callbacks accepted", outgoing.len());
    if accepted == outgoing.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn topics(args: TopicsArgs) -> ExitCode {
    let topics = match crate::configuration::topic_map_from_env() {
        Ok(topics) => topics.distinct(),
        Err(err) => {
            eprintln!("zego-kafka-bridge topics: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if !args.create {
        for topic in topics {
            println!("{topic}");
        }
        return ExitCode::SUCCESS;
    }
    if args.partitions < 1 || args.replication_factor < 1 {
        eprintln!(
            "zego-kafka-bridge topics: --partitions and --replication-factor must be at least 1"
        );
        return ExitCode::from(2);
    }
    let (brokers, properties) = match crate::configuration::kafka_client_from_env() {
        Ok(client) => client,
        Err(err) => {
            eprintln!("zego-kafka-bridge topics: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let layout = crate::kafka::TopicLayout {
        partitions: args.partitions,
        replication_factor: args.replication_factor,
    };
    let runtime = current_thread_runtime();
    let outcomes = runtime.block_on(crate::kafka::create_topics(
        &brokers,
        &properties,
        &topics,
        layout,
    ));
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(err) => {
            eprintln!("zego-kafka-bridge topics: {err}");
            return ExitCode::from(1);
        }
    };
    let mut failed = 0;
    for (topic, outcome) in outcomes {
        match outcome {
            crate::kafka::TopicCreation::Created => println!("{topic}: created"),
            crate::kafka::TopicCreation::AlreadyExists => println!("{topic}: exists"),
            crate::kafka::TopicCreation::Failed(reason) => {
                failed += 1;
                println!("{topic}: failed: {reason}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn healthcheck(url: &str) -> ExitCode {
    let runtime = current_thread_runtime();
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()
            .map_err(|err| err.to_string())?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Ok::<_, String>((status, body))
    });
    match answer {
        Ok((status, _)) if status.is_success() => ExitCode::SUCCESS,
        Ok((status, body)) => {
            eprintln!("{url}: {status} {}", body.trim());
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("{url}: {err}");
            ExitCode::from(1)
        }
    }
}

fn replay(file: &std::path::Path) -> ExitCode {
    let runtime = current_thread_runtime();
    let result = runtime.block_on(crate::replay::replay(file, |failure| {
        eprintln!("not published: {failure}");
    }));
    match result {
        Ok(report) => {
            println!(
                "{} published, {} failed, {} unreadable lines",
                report.published, report.failed, report.unreadable
            );
            if report.failed == 0 && report.unreadable == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("zego-kafka-bridge replay: {err}");
            ExitCode::from(2)
        }
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    // One thread for the load: the machine's other core is left to the server under test.
    let runtime = current_thread_runtime();
    let result = runtime.block_on(async {
        if args.create_topics {
            let brokers = args
                .brokers
                .as_deref()
                .ok_or("--create-topics needs --brokers")?;
            crate::bench::create_topics(brokers, &args.topic_prefix, 3).await?;
        }
        crate::bench::run(crate::bench::LoadOptions {
            url: args.url,
            secret: args.secret,
            connections: args.connections.max(1),
            duration: std::time::Duration::from_secs(args.duration),
            rate: args.rate,
            pad_bytes: args.pad_bytes,
            brokers: args.brokers,
            topic_prefix: args.topic_prefix,
            label: args.label,
        })
        .await
    });
    match result {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string(&report).expect("a report serializes")
            );
            let lost = report
                .end_to_end
                .as_ref()
                .is_some_and(|e2e| e2e.missing > 0);
            if lost {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("zego-kafka-bridge bench: {err}");
            ExitCode::from(2)
        }
    }
}

/// The runtime of the one-shot tools (send, topics, healthcheck, replay, bench): one thread.
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}
