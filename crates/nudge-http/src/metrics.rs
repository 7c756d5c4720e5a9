//! Prometheus text metrics: request counts by status class and the process's age.

use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub struct Metrics {
    started: Instant,
    /// Responses by the first digit of their status: index 1 to 5.
    responses: [AtomicU64; 6],
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            responses: Default::default(),
        }
    }
}

impl Metrics {
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).min(5);
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, backend: &str) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "# HELP nudge_http_responses_total HTTP responses sent, by status class."
        );
        let _ = writeln!(out, "# TYPE nudge_http_responses_total counter");
        for class in 1..=5 {
            let n = self.responses[class].load(Ordering::Relaxed);
            let _ = writeln!(out, "nudge_http_responses_total{{class=\"{class}xx\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP nudge_uptime_seconds Seconds since the process started."
        );
        let _ = writeln!(out, "# TYPE nudge_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "nudge_uptime_seconds {}",
            self.started.elapsed().as_secs()
        );
        let _ = writeln!(
            out,
            "# HELP nudge_info The running version and storage backend."
        );
        let _ = writeln!(out, "# TYPE nudge_info gauge");
        let _ = writeln!(
            out,
            "nudge_info{{version=\"{}\",backend=\"{backend}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

pub async fn count_responses(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    state.metrics.record(response.status().as_u16());
    response
}
