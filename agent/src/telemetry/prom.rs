//! The opt-in Prometheus endpoint: the newest report in the text exposition format
//! (version 0.0.4), `skerry_` names with base units (`_bytes`, `_seconds`, `_total`
//! for counters), on a loopback TCP port or a unix socket. Any request path gets the
//! metrics; the connection closes after each answer.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use skerry_core::telemetry::MetricsReport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::config::Listen;

/// Starts serving on the current runtime.
pub fn serve(listen: Listen, latest: Arc<Mutex<Option<MetricsReport>>>) {
    tokio::spawn(async move {
        match listen {
            Listen::Tcp(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => loop {
                    if let Ok((s, _)) = l.accept().await {
                        tokio::spawn(answer(s, latest.clone()));
                    }
                },
                Err(e) => {
                    tracing::error!(%addr, error = %e, "telemetry: Prometheus endpoint not bound")
                }
            },
            Listen::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                match tokio::net::UnixListener::bind(&path) {
                    Ok(l) => loop {
                        if let Ok((s, _)) = l.accept().await {
                            tokio::spawn(answer(s, latest.clone()));
                        }
                    },
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "telemetry: Prometheus socket not bound")
                    }
                }
            }
        }
    });
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    latest: Arc<Mutex<Option<MetricsReport>>>,
) {
    let mut buf = [0u8; 2048];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut buf)).await;
    let body = latest
        .lock()
        .ok()
        .and_then(|l| l.as_ref().map(render))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let _ = s.shutdown().await;
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text exposition of one report.
pub fn render(r: &MetricsReport) -> String {
    let mut o = String::new();
    let d = &r.device;
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    };
    one(
        "skerry_device_load1",
        "gauge",
        "1-minute load average.",
        d.load1_milli as f64 / 1000.0,
    );
    one(
        "skerry_device_memory_total_bytes",
        "gauge",
        "Physical memory.",
        d.memory_total_bytes as f64,
    );
    one(
        "skerry_device_memory_available_bytes",
        "gauge",
        "Memory available.",
        d.memory_available_bytes as f64,
    );
    one(
        "skerry_state_disk_free_bytes",
        "gauge",
        "Free bytes on the state directory's file system.",
        d.state_disk_free_bytes as f64,
    );
    one(
        "skerry_device_uptime_seconds",
        "gauge",
        "Time since boot.",
        d.uptime_secs as f64,
    );
    one(
        "skerry_agent_resident_memory_bytes",
        "gauge",
        "Resident memory of the agent.",
        d.agent_rss_bytes as f64,
    );
    one(
        "skerry_agent_cpu_seconds_total",
        "counter",
        "CPU time of the agent.",
        d.agent_cpu_ms as f64 / 1000.0,
    );
    one(
        "skerry_telemetry_dropped_total",
        "counter",
        "Telemetry messages dropped by the queue bound.",
        d.telemetry_dropped as f64,
    );
    type Get = fn(&skerry_core::telemetry::ContainerMetrics) -> Option<f64>;
    let per: [(&str, &str, &str, Get); 10] = [
        (
            "skerry_container_cpu_usage_seconds_total",
            "counter",
            "CPU time used.",
            |c| Some(c.cpu_total_ns as f64 / 1e9),
        ),
        (
            "skerry_container_cpu_throttled_periods_total",
            "counter",
            "Periods the cgroup was throttled.",
            |c| Some(c.throttled_periods as f64),
        ),
        (
            "skerry_container_cpu_throttled_seconds_total",
            "counter",
            "Time throttled.",
            |c| Some(c.throttled_ns as f64 / 1e9),
        ),
        (
            "skerry_container_memory_usage_bytes",
            "gauge",
            "Memory in use.",
            |c| Some(c.memory_bytes as f64),
        ),
        (
            "skerry_container_memory_limit_bytes",
            "gauge",
            "Memory limit (absent: unlimited).",
            |c| c.memory_limit_bytes.map(|l| l as f64),
        ),
        (
            "skerry_container_oom_kills_total",
            "counter",
            "OOM kills in the cgroup.",
            |c| Some(c.oom_kills as f64),
        ),
        (
            "skerry_container_pids",
            "gauge",
            "Processes and threads.",
            |c| Some(c.pids as f64),
        ),
        (
            "skerry_container_restarts_total",
            "counter",
            "Restarts by the supervisor.",
            |c| Some(f64::from(c.restarts)),
        ),
        (
            "skerry_container_log_lines_cut_total",
            "counter",
            "Log lines cut by the rate limit.",
            |c| Some(c.log_lines_cut as f64),
        ),
        (
            "skerry_container_healthy",
            "gauge",
            "1 healthy, 0 unhealthy, -1 unknown.",
            |c| {
                Some(match c.health.as_str() {
                    "HEALTHY" => 1.0,
                    "UNHEALTHY" => 0.0,
                    _ => -1.0,
                })
            },
        ),
    ];
    for (name, kind, help, get) in per {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for c in &r.containers {
            if let Some(v) = get(c) {
                let _ = writeln!(
                    o,
                    "{name}{{task=\"{}\",container=\"{}\"}} {v}",
                    esc(&c.task),
                    esc(&c.container)
                );
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use skerry_core::telemetry::ContainerMetrics;

    #[test]
    fn prom_render_names_and_labels() {
        let r = MetricsReport {
            containers: vec![ContainerMetrics {
                task: "t\"1".into(),
                container: "c".into(),
                memory_bytes: 42,
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&r);
        assert!(
            text.contains(
                "skerry_container_memory_usage_bytes{task=\"t\\\"1\",container=\"c\"} 42\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("skerry_container_memory_limit_bytes{"),
            "unlimited has no sample"
        );
        assert!(text.contains("# TYPE skerry_agent_cpu_seconds_total counter"));
    }
}
