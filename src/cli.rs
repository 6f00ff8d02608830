//! Command line: `serve` (the default), `send` and `sign`.

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
    /// Publish the events of a dead-letter file again (brokers and librdkafka settings from
    /// the same ZEGO_BRIDGE_* variables as the service).
    Replay(ReplayArgs),
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
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

fn replay(file: &std::path::Path) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
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
