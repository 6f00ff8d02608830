//! Whether the bridge can take callbacks now, and whether it is alive: what `/readyz` and
//! `/healthz` answer, and what the pipeline checks first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::acknowledger::Acknowledger;
use crate::metrics::Metrics;

pub struct Readiness {
    shutting_down: AtomicBool,
    acknowledger: Arc<dyn Acknowledger>,
}

impl Readiness {
    pub fn new(acknowledger: Arc<dyn Acknowledger>) -> Self {
        Readiness {
            shutting_down: AtomicBool::new(false),
            acknowledger,
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// From now on callbacks are refused with 503 and the bridge is not ready.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Why the bridge cannot take callbacks now; empty when it can.
    pub fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.is_shutting_down() {
            reasons.push("shutting down".to_owned());
        }
        reasons.extend(self.acknowledger.not_ready_reasons());
        reasons
    }

    /// Why the process should be restarted; `None` while it works or can still recover by
    /// itself.
    pub fn liveness_problem(&self) -> Option<String> {
        self.acknowledger.liveness_problem()
    }

    /// Sets the gauges that mirror state held elsewhere, before a scrape.
    pub fn refresh_gauges(&self, metrics: &Metrics) {
        metrics.set_ready(self.not_ready_reasons().is_empty());
        self.acknowledger.refresh_gauges(metrics);
    }
}
