//! The producer's internals, read from librdkafka's statistics (emitted every
//! `statistics.interval.ms`) into the bridge's own metric names.
//!
//! librdkafka's counters are cumulative since its client was created, and the bridge replaces
//! its client after a fatal error: each counter here advances by the difference between two
//! reports, and a value lower than the last one is a new client counting from zero.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use rdkafka::statistics::{Statistics, Window};

use super::{counter, counter_vec, gauge, gauge_vec};

/// The percentiles of librdkafka's windows that are exported, as label values. Not `quantile`:
/// Prometheus keeps that label for summaries.
pub const PERCENTILES: [&str; 2] = ["p50", "p99"];
/// The kinds of failed broker requests (`kind` label).
pub const REQUEST_ERROR_KINDS: [&str; 3] = ["transmit", "receive", "timeout"];

pub struct LibrdkafkaMetrics {
    broker_rtt: GaugeVec,
    broker_in_flight: IntGaugeVec,
    broker_waiting: IntGaugeVec,
    broker_connected: IntGaugeVec,
    broker_requests: IntCounterVec,
    broker_request_errors: IntCounterVec,
    batch_bytes: GaugeVec,
    batch_messages: GaugeVec,
    queue_bytes: IntGauge,
    queue_capacity_bytes: IntGauge,
    transmitted_messages: IntCounter,
    transmitted_bytes: IntCounter,
    /// The last value of each cumulative counter, by series.
    last_seen: Mutex<HashMap<String, u64>>,
}

impl LibrdkafkaMetrics {
    pub fn new() -> Self {
        LibrdkafkaMetrics {
            broker_rtt: float_gauge_vec(
                "zego_bridge_kafka_broker_rtt_seconds",
                "Round-trip time of the producer's requests to each broker over the last statistics \
                 interval; broker: the broker's node id; percentile: p50 or p99.",
                &["broker", "percentile"],
            ),
            broker_in_flight: gauge_vec(
                "zego_bridge_kafka_broker_requests_in_flight",
                "Requests sent to each broker and awaiting its response; broker: the node id.",
                &["broker"],
            ),
            broker_waiting: gauge_vec(
                "zego_bridge_kafka_broker_requests_waiting",
                "Requests waiting to be sent to each broker; broker: the node id.",
                &["broker"],
            ),
            broker_connected: gauge_vec(
                "zego_bridge_kafka_broker_connected",
                "1 while the producer's connection to the broker is up; broker: the node id.",
                &["broker"],
            ),
            broker_requests: counter_vec(
                "zego_bridge_kafka_broker_requests_total",
                "Requests sent to each broker; broker: the node id.",
                &["broker"],
            ),
            broker_request_errors: counter_vec(
                "zego_bridge_kafka_broker_request_errors_total",
                "Failed requests to each broker; broker: the node id; kind: transmit (could not \
                 be sent), receive (the response could not be read), timeout (no response in \
                 time).",
                &["broker", "kind"],
            ),
            batch_bytes: float_gauge_vec(
                "zego_bridge_kafka_batch_size_bytes",
                "Size of the record batches sent for each topic over the last statistics \
                 interval (absent for a topic that sent none); percentile: p50 or p99.",
                &["topic", "percentile"],
            ),
            batch_messages: float_gauge_vec(
                "zego_bridge_kafka_batch_messages",
                "Events per record batch sent for each topic over the last statistics interval \
                 (absent for a topic that sent none); percentile: p50 or p99.",
                &["topic", "percentile"],
            ),
            queue_bytes: gauge(
                "zego_bridge_kafka_queue_bytes",
                "Bytes of events in the producer queue or in flight to Kafka.",
            ),
            queue_capacity_bytes: gauge(
                "zego_bridge_kafka_queue_capacity_bytes",
                "Bytes the producer queue holds at most (queue.buffering.max.kbytes); beyond it, 503.",
            ),
            transmitted_messages: counter(
                "zego_bridge_kafka_transmitted_messages_total",
                "Events sent to brokers, retries included.",
            ),
            transmitted_bytes: counter(
                "zego_bridge_kafka_transmitted_bytes_total",
                "Bytes of events sent to brokers, retries included.",
            ),
            last_seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.broker_rtt.clone()),
            Box::new(self.broker_in_flight.clone()),
            Box::new(self.broker_waiting.clone()),
            Box::new(self.broker_connected.clone()),
            Box::new(self.broker_requests.clone()),
            Box::new(self.broker_request_errors.clone()),
            Box::new(self.batch_bytes.clone()),
            Box::new(self.batch_messages.clone()),
            Box::new(self.queue_bytes.clone()),
            Box::new(self.queue_capacity_bytes.clone()),
            Box::new(self.transmitted_messages.clone()),
            Box::new(self.transmitted_bytes.clone()),
        ]
    }

    /// One statistics report of the live producer.
    pub fn record(&self, stats: &Statistics) {
        let mut last_seen = self
            .last_seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut advance = |series: String, counter: &IntCounter, total: u64| {
            let previous = last_seen.insert(series, total).unwrap_or(0);
            // Lower than before: a rebuilt producer, counting from zero again.
            counter.inc_by(if total >= previous {
                total - previous
            } else {
                total
            });
        };

        self.queue_bytes.set(saturating_i64(stats.msg_size));
        self.queue_capacity_bytes
            .set(saturating_i64(stats.msg_size_max));
        advance(
            "txmsgs".to_owned(),
            &self.transmitted_messages,
            non_negative(stats.txmsgs),
        );
        advance(
            "txmsg_bytes".to_owned(),
            &self.transmitted_bytes,
            non_negative(stats.txmsg_bytes),
        );

        // Bootstrap connections (node id -1) and librdkafka's internal broker are not brokers
        // of the cluster; their work shows again under the broker's own id.
        for broker in stats.brokers.values().filter(|broker| broker.nodeid >= 0) {
            let id = broker.nodeid.to_string();
            let id = id.as_str();
            if let Some(rtt) = &broker.rtt {
                self.window(&self.broker_rtt, id, rtt, 1e6);
            }
            self.broker_in_flight
                .with_label_values(&[id])
                .set(broker.waitresp_cnt);
            self.broker_waiting
                .with_label_values(&[id])
                .set(broker.outbuf_cnt);
            self.broker_connected
                .with_label_values(&[id])
                .set(i64::from(broker.state == "UP"));
            advance(
                format!("tx/{id}"),
                &self.broker_requests.with_label_values(&[id]),
                broker.tx,
            );
            for (kind, total) in REQUEST_ERROR_KINDS.into_iter().zip([
                broker.txerrs,
                broker.rxerrs,
                broker.req_timeouts,
            ]) {
                advance(
                    format!("{kind}/{id}"),
                    &self.broker_request_errors.with_label_values(&[id, kind]),
                    total,
                );
            }
        }

        for topic in stats.topics.values() {
            self.window(&self.batch_bytes, &topic.topic, &topic.batchsize, 1.0);
            self.window(&self.batch_messages, &topic.topic, &topic.batchcnt, 1.0);
        }
    }

    /// The percentiles of one window, divided into the metric's unit; a window without values
    /// removes its series rather than claim a zero that was never measured.
    fn window(&self, vec: &GaugeVec, owner: &str, window: &Window, per_unit: f64) {
        for (percentile, value) in PERCENTILES.into_iter().zip([window.p50, window.p99]) {
            if window.cnt > 0 {
                vec.with_label_values(&[owner, percentile])
                    .set(value as f64 / per_unit);
            } else {
                let _ = vec.remove_label_values(&[owner, percentile]);
            }
        }
    }
}

fn float_gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn non_negative(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use rdkafka::statistics::{Broker, Topic};

    use super::*;

    fn report(txmsgs: i64, txerrs: u64, rtt_p99_micros: i64, batches: i64) -> Statistics {
        let broker = Broker {
            nodeid: 2,
            state: "UP".to_owned(),
            txerrs,
            tx: 40,
            waitresp_cnt: 3,
            outbuf_cnt: 1,
            rtt: Some(Window {
                p50: 1_500,
                p99: rtt_p99_micros,
                cnt: 10,
                ..Window::default()
            }),
            ..Broker::default()
        };
        let bootstrap = Broker {
            nodeid: -1,
            txerrs: 1_000,
            ..Broker::default()
        };
        let topic = Topic {
            topic: "zego.room.closed".to_owned(),
            batchsize: Window {
                p50: 2_048,
                p99: 9_000,
                cnt: batches,
                ..Window::default()
            },
            batchcnt: Window {
                p50: 7,
                p99: 30,
                cnt: batches,
                ..Window::default()
            },
            ..Topic::default()
        };
        Statistics {
            txmsgs,
            txmsg_bytes: txmsgs * 100,
            msg_size: 4_096,
            msg_size_max: 33_554_432,
            brokers: [
                ("127.0.0.1:9092/2".to_owned(), broker),
                ("127.0.0.1:9092/bootstrap".to_owned(), bootstrap),
            ]
            .into(),
            topics: [("zego.room.closed".to_owned(), topic)].into(),
            ..Statistics::default()
        }
    }

    fn rendered(metrics: &LibrdkafkaMetrics) -> String {
        let registry = prometheus::Registry::new();
        for collector in metrics.collectors() {
            registry.register(collector).unwrap();
        }
        let mut buffer = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut buffer,
        )
        .unwrap();
        String::from_utf8(buffer).unwrap()
    }

    #[test]
    fn a_report_becomes_the_bridges_metrics() {
        let metrics = LibrdkafkaMetrics::new();
        metrics.record(&report(500, 2, 8_000, 4));
        let text = rendered(&metrics);
        for series in [
            r#"zego_bridge_kafka_broker_rtt_seconds{broker="2",percentile="p50"} 0.0015"#,
            r#"zego_bridge_kafka_broker_rtt_seconds{broker="2",percentile="p99"} 0.008"#,
            r#"zego_bridge_kafka_broker_requests_in_flight{broker="2"} 3"#,
            r#"zego_bridge_kafka_broker_requests_waiting{broker="2"} 1"#,
            r#"zego_bridge_kafka_broker_connected{broker="2"} 1"#,
            r#"zego_bridge_kafka_broker_requests_total{broker="2"} 40"#,
            r#"zego_bridge_kafka_broker_request_errors_total{broker="2",kind="transmit"} 2"#,
            r#"zego_bridge_kafka_broker_request_errors_total{broker="2",kind="timeout"} 0"#,
            r#"zego_bridge_kafka_batch_size_bytes{percentile="p99",topic="zego.room.closed"} 9000"#,
            r#"zego_bridge_kafka_batch_messages{percentile="p50",topic="zego.room.closed"} 7"#,
            "zego_bridge_kafka_queue_bytes 4096",
            "zego_bridge_kafka_queue_capacity_bytes 33554432",
            "zego_bridge_kafka_transmitted_messages_total 500",
            "zego_bridge_kafka_transmitted_bytes_total 50000",
        ] {
            assert!(text.contains(series), "{series} in\n{text}");
        }
        // The bootstrap connection is no broker of the cluster.
        assert!(!text.contains(r#"broker="-1""#), "{text}");
    }

    #[test]
    fn counters_advance_across_reports_and_across_a_rebuilt_producer() {
        let metrics = LibrdkafkaMetrics::new();
        metrics.record(&report(500, 2, 8_000, 4));
        metrics.record(&report(800, 5, 8_000, 4));
        let text = rendered(&metrics);
        assert!(
            text.contains("zego_bridge_kafka_transmitted_messages_total 800"),
            "{text}"
        );
        assert!(text.contains(r#"kind="transmit"} 5"#), "{text}");
        // A rebuilt producer reports from zero: its 30 come on top, nothing goes backwards.
        metrics.record(&report(30, 1, 8_000, 4));
        let text = rendered(&metrics);
        assert!(
            text.contains("zego_bridge_kafka_transmitted_messages_total 830"),
            "{text}"
        );
        assert!(text.contains(r#"kind="transmit"} 6"#), "{text}");
    }

    #[test]
    fn a_window_without_values_removes_its_series() {
        let metrics = LibrdkafkaMetrics::new();
        metrics.record(&report(500, 0, 8_000, 4));
        assert!(rendered(&metrics).contains("zego_bridge_kafka_batch_size_bytes{"));
        metrics.record(&report(500, 0, 8_000, 0));
        let text = rendered(&metrics);
        assert!(
            !text.contains("zego_bridge_kafka_batch_size_bytes{"),
            "{text}"
        );
        assert!(
            !text.contains("zego_bridge_kafka_batch_messages{"),
            "{text}"
        );
    }
}
