//! Prometheus metrics (`GET /metrics`, on when the server starts with `--metrics`): requests by
//! service, operation and outcome with latency histograms, audit-write latency, the agents this
//! replica holds, open Run Command invocations by status, and the store's connection pools. A small registry of our own: a few counters and histograms behind one
//! mutex each, rendered in the Prometheus text format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The registry one server process keeps.
#[derive(Default)]
pub struct Metrics {
    /// (service, operation, outcome) → requests and their latency.
    requests: Mutex<BTreeMap<(String, String, String), Histogram>>,
    audit_writes: Mutex<Histogram>,
}

/// Label values are operation and service names and error codes, but escape them anyway.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts one API request. `outcome` is `ok` or the AWS error code.
    pub fn request(&self, service: &str, operation: &str, outcome: &str, took: Duration) {
        if let Ok(mut map) = self.requests.lock() {
            map.entry((service.to_string(), operation.to_string(), outcome.to_string()))
                .or_default()
                .observe(took.as_secs_f64());
        }
    }

    /// Times one audit-record write.
    pub fn audit_write(&self, took: Duration) {
        if let Ok(mut h) = self.audit_writes.lock() {
            h.observe(took.as_secs_f64());
        }
    }

    /// The text exposition, with the gauges read at call time.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        out.push_str("# HELP corral_requests_total API requests by service, operation and outcome.\n");
        out.push_str("# TYPE corral_requests_total counter\n");
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        for ((service, operation, outcome), h) in &requests {
            let _ = writeln!(
                out,
                "corral_requests_total{{service=\"{}\",operation=\"{}\",outcome=\"{}\"}} {}",
                label(service),
                label(operation),
                label(outcome),
                h.count
            );
        }
        out.push_str("# HELP corral_request_duration_seconds API request latency.\n");
        out.push_str("# TYPE corral_request_duration_seconds histogram\n");
        let mut by_operation: BTreeMap<(String, String), Histogram> = BTreeMap::new();
        for ((service, operation, _), h) in &requests {
            let merged = by_operation.entry((service.clone(), operation.clone())).or_default();
            if merged.counts.is_empty() {
                merged.counts = vec![0; BUCKETS.len()];
            }
            for (i, n) in h.counts.iter().enumerate() {
                merged.counts[i] += n;
            }
            merged.sum += h.sum;
            merged.count += h.count;
        }
        for ((service, operation), h) in &by_operation {
            let labels = format!("service=\"{}\",operation=\"{}\"", label(service), label(operation));
            h.render(&mut out, "corral_request_duration_seconds", &labels);
        }
        out.push_str("# HELP corral_audit_write_duration_seconds Time to store an audit record.\n");
        out.push_str("# TYPE corral_audit_write_duration_seconds histogram\n");
        let audit = self.audit_writes.lock().map(|h| h.clone()).unwrap_or_default();
        audit.render(&mut out, "corral_audit_write_duration_seconds", "");
        out.push_str("# HELP corral_connected_agents Control channels this replica holds.\n");
        out.push_str("# TYPE corral_connected_agents gauge\n");
        let _ = writeln!(out, "corral_connected_agents {}", gauges.connected_agents);
        if let Some(open) = &gauges.open_invocations {
            out.push_str("# HELP corral_open_invocations Run Command invocations not finished yet, by status.\n");
            out.push_str("# TYPE corral_open_invocations gauge\n");
            for status in OPEN_STATUSES {
                let n = open.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
                let _ = writeln!(out, "corral_open_invocations{{status=\"{}\"}} {n}", label(status));
            }
        }
        out.push_str("# HELP corral_store_connections Store connections by pool and state.\n");
        out.push_str("# TYPE corral_store_connections gauge\n");
        for p in &gauges.pools {
            let in_use = p.open.saturating_sub(p.idle);
            let _ = writeln!(out, "corral_store_connections{{pool=\"{}\",state=\"in_use\"}} {in_use}", p.pool);
            let _ = writeln!(out, "corral_store_connections{{pool=\"{}\",state=\"idle\"}} {}", p.pool, p.idle);
        }
        out.push_str("# HELP corral_store_max_connections The most connections each store pool opens.\n");
        out.push_str("# TYPE corral_store_max_connections gauge\n");
        for p in &gauges.pools {
            let _ = writeln!(out, "corral_store_max_connections{{pool=\"{}\"}} {}", p.pool, p.max);
        }
        out
    }
}

/// The invocation statuses that are not final, as `corral_open_invocations` reports them.
pub const OPEN_STATUSES: &[&str] = &["Pending", "Delayed", "InProgress", "Cancelling"];

/// Values read when metrics are scraped.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Control channels this replica holds.
    pub connected_agents: usize,
    /// Open invocations by status (all replicas: it is read from the store); `None` when the
    /// store could not be read, and the metric is left out.
    pub open_invocations: Option<Vec<(String, u64)>>,
    /// This replica's store pools.
    pub pools: Vec<corral_store::PoolStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_render_as_prometheus_text() {
        let m = Metrics::default();
        m.request("ssm", "GetServiceSetting", "ok", Duration::from_millis(3));
        m.request("ssm", "GetServiceSetting", "ok", Duration::from_millis(30));
        m.request("ssm", "GetServiceSetting", "AccessDeniedException", Duration::from_millis(2));
        m.audit_write(Duration::from_micros(500));
        let gauges = Gauges {
            connected_agents: 4,
            open_invocations: Some(vec![("Pending".into(), 3)]),
            pools: vec![corral_store::PoolStats { pool: "readers", open: 3, idle: 1, max: 8 }],
        };
        let text = m.render(&gauges);
        assert!(
            text.contains("corral_requests_total{service=\"ssm\",operation=\"GetServiceSetting\",outcome=\"ok\"} 2")
        );
        assert!(text.contains("outcome=\"AccessDeniedException\"} 1"));
        assert!(text.contains(
            "corral_request_duration_seconds_bucket{service=\"ssm\",operation=\"GetServiceSetting\",le=\"0.005\"} 2"
        ));
        assert!(
            text.contains("corral_request_duration_seconds_count{service=\"ssm\",operation=\"GetServiceSetting\"} 3")
        );
        assert!(text.contains("corral_audit_write_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("corral_connected_agents 4"));
        assert!(text.contains("corral_open_invocations{status=\"Pending\"} 3"));
        assert!(text.contains("corral_open_invocations{status=\"InProgress\"} 0"));
        assert!(text.contains("corral_store_connections{pool=\"readers\",state=\"in_use\"} 2"));
        assert!(text.contains("corral_store_max_connections{pool=\"readers\"} 8"));
        let without = m.render(&Gauges::default());
        assert!(!without.contains("corral_open_invocations"), "left out when the store cannot be read");
    }
}
