//! librdkafka's in-process mock cluster, for a first run with no broker configured.
//! Nothing sent to it is persisted.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;

/// The mock cluster lives on a thread of its own (its handle is not `Send`) until dropped.
pub struct EmbeddedCluster {
    bootstrap_servers: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedCluster {
    /// Starts a one-broker cluster holding these topics.
    pub fn start(topics: &[String], partitions: i32) -> Result<Self, KafkaError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, KafkaError>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let topics = topics.to_vec();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                for topic in &topics {
                    if let Err(err) = cluster.create_topic(topic, partitions, 1) {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Returns when the sender is dropped or sends: either way, time to stop.
                let _ = stop_rx.recv();
                drop(cluster);
            })
            .expect("spawning a thread");
        let bootstrap_servers = ready_rx.recv().unwrap_or(Err(KafkaError::MockCluster(
            rdkafka::types::RDKafkaErrorCode::Fail,
        )))?;
        Ok(EmbeddedCluster {
            bootstrap_servers,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
