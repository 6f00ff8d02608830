//! Command line: `serve` (the default), `check-config`, `send`, `sign`, `topics`, `healthcheck`,
//! `replay`.
//! The measuring tools live apart, in `tools/bench`.

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
                  (docs/configuration.md).",
    after_long_help = crate::configuration::help_text()
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge (the default).
    Serve,
    /// Check the configuration as `serve` would (librdkafka's properties included) without
    /// serving or connecting, and print what it resolves to, secrets redacted. Exit 0 when it
    /// is valid, 2 when it is not (the error names the variable).
    CheckConfig,
    /// Sign callbacks as ZEGO does and POST them to a bridge.
    Send(SendArgs),
    /// Print the signature ZEGO would send for a timestamp and nonce.
    Sign(SignArgs),
    /// List the topics the bridge publishes to (as configured by ZEGO_BRIDGE_TOPIC_*), and with
    /// --create create the missing ones on ZEGO_BRIDGE_KAFKA_BROKERS.
    Topics(TopicsArgs),
    /// Exit 0 when the bridge's admin endpoint answers 2xx (a container health check: the
    /// runtime image has no shell or curl).
    Healthcheck(HealthcheckArgs),
    /// Publish the events of a dead-letter file again, once (brokers and librdkafka settings
    /// from the same ZEGO_BRIDGE_* variables as the service). Each letter Kafka acknowledged moves
    /// to FILE.replayed, each that failed stays in FILE; run twice, nothing is published twice.
    /// An interrupted replay resumes. Refused on the live file of a running bridge, which sends
    /// its letters again by itself: replay its FILE.rejected once the cause is fixed.
    Replay(ReplayArgs),
    /// List the dead letters beside FILE (default: ZEGO_BRIDGE_DEAD_LETTER_PATH): the file, the
    /// bridge's retries in progress, the rejected ones, replays in progress and done; with
    /// --purge-replayed, delete the record of what replay has published.
    DeadLetters(DeadLettersArgs),
}

#[derive(Debug, Args)]
struct DeadLettersArgs {
    /// The dead-letter file (default: ZEGO_BRIDGE_DEAD_LETTER_PATH, or its default).
    file: Option<PathBuf>,
    /// Delete FILE.replayed and FILE.rejected.replayed: letters Kafka has acknowledged.
    #[arg(long)]
    purge_replayed: bool,
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
struct ReplayArgs {
    /// The dead-letter file (ZEGO_BRIDGE_DEAD_LETTER_PATH of the bridge that wrote it).
    file: PathBuf,
}

#[derive(Debug, Args)]
struct SendArgs {
    /// Where to post RTC callbacks; another product's go to its path below it
    /// (`…/v1/callbacks/zim`).
    #[arg(long, default_value = "http://127.0.0.1:8080/v1/callbacks")]
    url: String,
    /// Callback secret to sign with (the demo secret matches a bridge started without any).
    #[arg(long, env = "ZEGO_SEND_SECRET", default_value = DEMO_SECRET, hide_default_value = true, hide_env_values = true)]
    secret: String,
    /// Send one bundled sample, by event (`room_close`, `send_msg`) or file name
    /// (`room_close.form.txt`, `zim.send_msg.json`).
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
    /// How long to wait for something to listen at the URL before sending (a bridge started a
    /// moment ago in another terminal); 0: send at once without looking (through a proxy, say).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    wait: u64,
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

/// The exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It did not work: the server failed or could not start, a request or a publish failed
    /// (the output says which).
    Failed = 1,
    /// The configuration, the arguments or the input are wrong: nothing was started.
    Misconfigured = 2,
    /// The server stopped, but accepted events were still undelivered at the shutdown deadline
    /// and were written to the dead-letter file.
    Undelivered = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Parses the command line and runs the command; the exit code says whether it worked.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::CheckConfig => check_config(),
        Command::Send(args) => send(args),
        Command::Replay(args) => replay(&args.file),
        Command::DeadLetters(args) => dead_letters(args),
        Command::Topics(args) => topics(args),
        Command::Healthcheck(args) => healthcheck(&args.url),
        Command::Sign(args) => {
            println!(
                "{}",
                crate::zego::sign(&args.secret, &args.timestamp, &args.nonce)
            );
            ExitCode::SUCCESS
        }
    }
}

fn check_config() -> ExitCode {
    let checked = Settings::explained(std::env::vars()).and_then(|(settings, effective)| {
        settings.check_producer()?;
        Ok((settings, effective))
    });
    match checked {
        Ok((settings, effective)) => {
            print!(
                "{}",
                crate::configuration::render_effective(&settings, &effective)
            );
            eprintln!("zego-kafka-bridge: the configuration is valid");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("zego-kafka-bridge: configuration error: {err}");
            Exit::Misconfigured.into()
        }
    }
}

fn serve() -> ExitCode {
    let settings = match Settings::from_env().and_then(|settings| {
        settings.check_producer()?;
        Ok(settings)
    }) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("zego-kafka-bridge: configuration error: {err}");
            return Exit::Misconfigured.into();
        }
    };
    if let Err(err) = telemetry::init(settings.log_format, &settings.log_level) {
        eprintln!("zego-kafka-bridge: configuration error: {err}");
        return Exit::Misconfigured.into();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let termination_message = settings.termination_message_path.clone();
    let dead_letter_path = settings.dead_letter_path.clone();
    runtime.block_on(async {
        let application = match Application::build(settings).await {
            Ok(application) => application,
            Err(err) => {
                tracing::error!(error = %err, "cannot start");
                eprintln!("zego-kafka-bridge: cannot start: {err}");
                return Exit::Failed.into();
            }
        };
        let stopped = application.run_until_stopped().await;
        if let Ok(report) = &stopped {
            write_termination_message(&termination_message, report, &dead_letter_path);
        }
        match stopped {
            Ok(report) if report.not_in_kafka() == 0 => ExitCode::SUCCESS,
            Ok(_) => Exit::Undelivered.into(),
            Err(err) => {
                tracing::error!(error = %err, "server failed");
                Exit::Failed.into()
            }
        }
    })
}

/// Kubernetes' own termination-message file: written only when it exists (the kubelet makes
/// it), never created under /dev elsewhere.
const KUBERNETES_TERMINATION_LOG: &str = "/dev/termination-log";

/// The exit summary, where `kubectl describe pod` and the pod's status show it after the
/// metrics port has closed: a loss at shutdown must be visible somewhere that outlives the
/// process.
fn write_termination_message(
    path: &std::path::Path,
    report: &crate::ingest::ShutdownReport,
    dead_letter_path: &std::path::Path,
) {
    let message = if report.undelivered > 0 {
        format!(
            "stopped with {} accepted events undelivered at the shutdown deadline: dead-lettered \
             to {} ({} letters wait there in all; the next bridge on that file sends them again; \
             if the file goes with the pod, they are lost)\n",
            report.undelivered,
            dead_letter_path.display(),
            report.dead_letters_waiting,
        )
    } else if report.dead_letters_waiting > 0 {
        format!(
            "stopped with {} accepted events not in Kafka: dead letters waiting in {} (the next \
             bridge on that file sends them again; if the file goes with the pod, they are lost)\n",
            report.dead_letters_waiting,
            dead_letter_path.display()
        )
    } else if report.left_in_spool > 0 {
        format!(
            "stopped with {} accepted events left in the spool, sent at the next start\n",
            report.left_in_spool
        )
    } else {
        "stopped: every accepted event was delivered\n".to_owned()
    };
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .truncate(true)
        .create(path != std::path::Path::new(KUBERNETES_TERMINATION_LOG));
    let written = options
        .open(path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, message.as_bytes()));
    match written {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!(path = %path.display(), error = %err,
            "could not write the termination message"),
    }
}

fn send(args: SendArgs) -> ExitCode {
    let outgoing = match &args.file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(body) => Ok(vec![Outgoing::from_body(path.display().to_string(), body)]),
            Err(err) => Err(format!("cannot read {}: {err}", path.display())),
        },
        None => sender::bundled(args.sample.as_deref()),
    };
    let outgoing = match outgoing {
        Ok(outgoing) => outgoing,
        Err(err) => {
            eprintln!("zego-kafka-bridge send: {err}");
            return Exit::Misconfigured.into();
        }
    };
    let runtime = current_thread_runtime();
    let wait = std::time::Duration::from_secs(args.wait);
    if !wait.is_zero() {
        if let Err(err) = runtime.block_on(sender::wait_for_listener(&args.url, wait)) {
            eprintln!("zego-kafka-bridge send: {err}");
            return Exit::Failed.into();
        }
    }
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
            let url = sender::url_for(&args.url, callback.product);
            let delivery = sender::post(&client, &url, &signed, delays, |failed, delay| {
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
        Exit::Failed.into()
    }
}

/// How long the used-signatures topic keeps a use: at least the window a start reads back
/// (twice `ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS`, and a second), and never less than two hours, so
/// that a larger skew set later is still covered by what was written before.
fn used_signatures_retention_ms() -> u64 {
    let skew: u64 = std::env::var("ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS")
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(300);
    crate::ingest::signature_window(skew)
        .map_or(0, |window| window.as_millis() as u64)
        .max(2 * 3600 * 1000)
}

fn topics(args: TopicsArgs) -> ExitCode {
    let (topics, used_signatures) = match crate::configuration::topic_map_from_env() {
        Ok(topics) => (topics.distinct(), topics.used_signatures().to_owned()),
        Err(err) => {
            eprintln!("zego-kafka-bridge topics: configuration error: {err}");
            return Exit::Misconfigured.into();
        }
    };
    if !args.create {
        for topic in topics {
            println!("{topic}");
        }
        println!("{used_signatures}");
        return ExitCode::SUCCESS;
    }
    if args.partitions < 1 || args.replication_factor < 1 {
        eprintln!(
            "zego-kafka-bridge topics: --partitions and --replication-factor must be at least 1"
        );
        return Exit::Misconfigured.into();
    }
    let (brokers, properties) = match crate::configuration::kafka_client_from_env() {
        Ok(client) => client,
        Err(err) => {
            eprintln!("zego-kafka-bridge topics: configuration error: {err}");
            return Exit::Misconfigured.into();
        }
    };
    let layout = crate::kafka::TopicLayout {
        partitions: args.partitions,
        replication_factor: args.replication_factor,
    };
    let runtime = current_thread_runtime();
    let retention_ms = used_signatures_retention_ms().to_string();
    let outcomes = runtime.block_on(async {
        let mut outcomes =
            crate::kafka::create_topics(&brokers, &properties, &topics, layout).await?;
        outcomes.extend(
            crate::kafka::create_topics_with(
                &brokers,
                &properties,
                &[used_signatures],
                layout,
                &[("retention.ms", &retention_ms)],
            )
            .await?,
        );
        Ok::<_, String>(outcomes)
    });
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(err) => {
            eprintln!("zego-kafka-bridge topics: {err}");
            return Exit::Failed.into();
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
        Exit::Failed.into()
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
            Exit::Failed.into()
        }
        Err(err) => {
            eprintln!("{url}: {err}");
            Exit::Failed.into()
        }
    }
}

fn replay(file: &std::path::Path) -> ExitCode {
    let runtime = current_thread_runtime();
    let result = runtime.block_on(crate::replay::replay(file, |failure| {
        eprintln!("not published: {failure}");
    }));
    match result {
        Ok(report) if !report.found => {
            println!("nothing to replay: {} does not exist", file.display());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            if report.resumed_after > 0 {
                println!(
                    "resumed an interrupted replay after its first {} letters",
                    report.resumed_after
                );
            }
            println!(
                "{} published (moved to {}: `zego-kafka-bridge dead-letters --purge-replayed` \
                 deletes that record), {} failed and {} unreadable (kept in {})",
                report.published,
                crate::replay::beside(file, ".replayed").display(),
                report.failed,
                report.unreadable,
                file.display()
            );
            if report.failed == 0 && report.unreadable == 0 {
                ExitCode::SUCCESS
            } else {
                Exit::Failed.into()
            }
        }
        Err(err) => {
            eprintln!("zego-kafka-bridge replay: {err}");
            Exit::Misconfigured.into()
        }
    }
}

fn dead_letters(args: DeadLettersArgs) -> ExitCode {
    let file = args.file.unwrap_or_else(|| {
        PathBuf::from(
            std::env::var("ZEGO_BRIDGE_DEAD_LETTER_PATH").unwrap_or_else(|_| {
                crate::configuration::SETTINGS
                    .iter()
                    .find(|setting| setting.variable == "ZEGO_BRIDGE_DEAD_LETTER_PATH")
                    .and_then(|setting| setting.default)
                    .unwrap_or("dead-letter.jsonl")
                    .to_owned()
            }),
        )
    });
    if args.purge_replayed {
        let mut failed = false;
        for record in [".replayed", ".rejected.replayed"] {
            let path = crate::replay::beside(&file, record);
            match crate::kafka::DeadLetterFile::read(&path) {
                Ok(letters) => match std::fs::remove_file(&path) {
                    Ok(()) => println!("{}: {} letters deleted", path.display(), letters.len()),
                    Err(err) => {
                        eprintln!("cannot delete {}: {err}", path.display());
                        failed = true;
                    }
                },
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    eprintln!("cannot read {}: {err}", path.display());
                    failed = true;
                }
            }
        }
        return if failed {
            Exit::Failed.into()
        } else {
            ExitCode::SUCCESS
        };
    }
    match crate::replay::inventory(&file) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("zego-kafka-bridge dead-letters: {err}");
            Exit::Failed.into()
        }
    }
}

/// The runtime of the one-shot tools (send, topics, healthcheck, replay): one thread.
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}
