//! Apache Kafka clusters of a test's own, through the project's harness (`scripts/kafka`): a
//! controller and three brokers (replication factor 3, `min.insync.replicas=2`), or a single
//! node. Any one node can be killed, stopped, frozen, thawed and started again; readiness is
//! checked by the harness over the Kafka protocol.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value as Json;

use crate::helpers::unique_prefix;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka");

pub struct KafkaCluster {
    dir: PathBuf,
    /// Every broker's PLAINTEXT listener.
    pub bootstrap: String,
    /// What `scripts/kafka start --json` printed: ports, process ids, security listeners.
    pub summary: Json,
}

/// A node action of the harness: what a test does to one broker.
#[derive(Clone, Copy, Debug)]
pub enum NodeAction {
    /// SIGKILL: no controlled shutdown, no flush.
    Kill,
    /// SIGTERM and wait: a controlled shutdown, as a rolling restart does it.
    Stop,
    /// Start again on the same ports and data, and wait until it serves.
    Start,
    /// SIGSTOP: the process holds its connections but answers nothing.
    Freeze,
    /// SIGCONT.
    Thaw,
}

impl NodeAction {
    fn verb(self) -> &'static str {
        match self {
            NodeAction::Kill => "kill",
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
            NodeAction::Freeze => "freeze",
            NodeAction::Thaw => "thaw",
        }
    }
}

impl KafkaCluster {
    /// A controller and `brokers` brokers (1: one combined node), started and ready.
    pub async fn start(brokers: usize, security: bool) -> KafkaCluster {
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kafka-{}", unique_prefix()));
        let mut args = vec![
            "start".to_owned(),
            "--json".to_owned(),
            "--brokers".to_owned(),
            brokers.to_string(),
        ];
        if security {
            args.push("--security".to_owned());
        }
        let output = harness(&dir, args).await;
        let summary: Json = serde_json::from_str(&output).expect("the harness prints JSON");
        KafkaCluster {
            dir,
            bootstrap: summary["bootstrap"].as_str().unwrap().to_owned(),
            summary,
        }
    }

    /// Broker ids, in order.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.summary["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|node| node["roles"].as_str().unwrap().contains("broker"))
            .map(|node| node["id"].as_i64().unwrap() as i32)
            .collect()
    }

    pub async fn node(&self, action: NodeAction, id: i32) {
        harness(
            &self.dir,
            vec!["node".to_owned(), action.verb().to_owned(), id.to_string()],
        )
        .await;
    }

    /// Every node stopped cleanly, data kept; `start_all` brings the cluster back.
    pub async fn stop_all(&self) {
        harness(&self.dir, vec!["stop".to_owned(), "--keep".to_owned()]).await;
    }

    pub async fn start_all(&self) {
        harness(&self.dir, vec!["start".to_owned(), "--json".to_owned()]).await;
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        let _ = Command::new(HARNESS)
            .args(["stop", "--kill", "--dir"])
            .arg(&self.dir)
            .status();
    }
}

/// Runs the harness off the async runtime (it waits for brokers) and returns its output.
async fn harness(dir: &std::path::Path, args: Vec<String>) -> String {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(HARNESS)
            .args(&args)
            .arg("--dir")
            .arg(&dir)
            .output()
            .expect("scripts/kafka runs");
        assert!(
            output.status.success(),
            "scripts/kafka {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap()
}
