//! The real binary as a process, as an operator runs it; ports and scratch files.

use super::*;

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh file path in a directory of its own.
pub fn scratch_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zkb-{}", unique_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The real binary, as an operator runs it. Its output goes to a file: a pipe that fills up
/// would stall a busy bridge.
pub struct BridgeProcess {
    pub child: std::process::Child,
    pub callbacks_url: String,
    pub admin_url: String,
    output: std::path::PathBuf,
}

impl BridgeProcess {
    /// Starts the binary on free loopback ports with only these variables (and PATH), and
    /// waits until it is ready.
    pub async fn start(vars: &[(&str, &str)]) -> BridgeProcess {
        let bridge = Self::start_unready(vars).await;
        bridge.wait_ready(Duration::from_secs(20)).await;
        bridge
    }

    /// Starts the binary and waits until it serves its admin port, ready or not.
    pub async fn start_unready(vars: &[(&str, &str)]) -> BridgeProcess {
        Self::start_unready_under(&[], vars).await
    }

    /// As [`BridgeProcess::start_unready`], run by `wrapper` (a command and its arguments, the
    /// binary's path appended), such as strace slowing a system call.
    pub async fn start_unready_under(wrapper: &[&str], vars: &[(&str, &str)]) -> BridgeProcess {
        let (public, admin) = (free_port(), free_port());
        let output = scratch_file("bridge.log");
        let log = std::fs::File::create(&output).unwrap();
        let mut command = bridge_command();
        if let Some((program, args)) = wrapper.split_first() {
            let mut wrapped = std::process::Command::new(program);
            wrapped
                .args(args)
                .arg(command.get_program())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .current_dir(command.get_current_dir().unwrap());
            command = wrapped;
        }
        let child = command
            .env("ZEGO_BRIDGE_LISTEN_ADDR", format!("127.0.0.1:{public}"))
            .env("ZEGO_BRIDGE_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("ZEGO_BRIDGE_HTTP_WORKERS", "2")
            // Nothing scrapes most of these bridges: a test that wants the shutdown to wait for
            // a scrape says so.
            .env("ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS", "0")
            .envs(vars.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the binary starts");
        let bridge = BridgeProcess {
            child,
            callbacks_url: format!("http://127.0.0.1:{public}/v1/callbacks"),
            admin_url: format!("http://127.0.0.1:{admin}"),
            output,
        };
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        while client
            .get(format!("{}/healthz", bridge.admin_url))
            .send()
            .await
            .is_err()
        {
            // Without brokers the bridge creates every product's topics in the embedded cluster
            // first, one round trip to its thread each: with the tests running beside it on
            // 2 cores, that took more than 20 s twice (7 s with three busy loops beside it, when
            // it takes 0.1 s on an idle machine).
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the bridge did not start: {}",
                bridge.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bridge
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, within: Duration) {
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        loop {
            let ready = client
                .get(format!("{}/readyz", self.admin_url))
                .send()
                .await
                .map(|response| response.status() == 200)
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                started.elapsed() < within,
                "the bridge did not become ready: {}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// `host:port` of the public listener, for raw TCP clients.
    pub fn address(&self) -> String {
        self.callbacks_url
            .trim_start_matches("http://")
            .trim_end_matches("/v1/callbacks")
            .to_owned()
    }

    /// Sends SIGTERM, waits, and returns the exit code and everything the process printed.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        signal(self.child.id(), "TERM");
        let code = self.child.wait().unwrap().code();
        (code, self.output())
    }

    /// SIGTERM, then scrapes `/metrics` every 10 ms, as Prometheus would while the pod stops,
    /// until a scrape carries `zego_bridge_undelivered_at_shutdown` above 0: that line. Panics
    /// if none does within 25 s (the admin port closed first).
    pub async fn terminate_and_scrape_undelivered(&self) -> String {
        signal(self.child.id(), "TERM");
        let client = reqwest::Client::new();
        let signalled = std::time::Instant::now();
        loop {
            let scrape = match client
                .get(format!("{}/metrics", self.admin_url))
                .send()
                .await
            {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if let Some(line) = scrape
                .lines()
                .find(|line| line.starts_with("zego_bridge_undelivered_at_shutdown "))
                .filter(|line| !line.ends_with(" 0"))
            {
                return line.to_owned();
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(25),
                "no scrape saw the undelivered events before the admin port closed: {}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the process to exit (after a signal sent with [`signal`]).
    pub fn wait(mut self) -> (Option<i32>, String) {
        let code = self.child.wait().unwrap().code();
        (code, self.output())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// The real binary with an empty environment (but PATH), as an operator's command line, in a
/// scratch directory of its own: whatever it writes by default (the dead-letter file, the
/// spool) lands there, never in the repository.
pub fn bridge_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_zego-kafka-bridge"));
    let workdir = scratch_file("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(workdir);
    command
}

/// Sends `request` as it is on a new connection to `address` and reads until the server closes
/// it.
pub async fn raw_exchange(address: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may answer and close before taking all of an oversized head.
    let _ = stream.write_all(request).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}
