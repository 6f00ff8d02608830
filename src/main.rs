#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    zego_kafka_bridge::cli::run()
}
