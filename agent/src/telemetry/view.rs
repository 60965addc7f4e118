//! How a [`MetricsReport`] looks to people and scripts: the `top` screen (device line,
//! then one row per container) shared by `skerry top` and `skerry ctl top`.

use serde::Serialize;
use skerry_core::telemetry::MetricsReport;

use crate::cli::output::{human_size, render_table, Column, Row};

/// One container's row.
#[derive(Debug, Serialize)]
pub struct TopRow {
    task: String,
    container: String,
    state: String,
    cpu_percent: f64,
    memory_bytes: u64,
    memory_limit_bytes: Option<u64>,
    oom_kills: u64,
    pids: u64,
    restarts: u32,
    health: String,
    log_lines_cut: u64,
}

impl Row for TopRow {
    const COLUMNS: &'static [Column] = &[
        Column::left("TASK"),
        Column::left("CONTAINER"),
        Column::left("STATE"),
        Column::right("CPU%"),
        Column::right("MEM"),
        Column::right("LIMIT"),
        Column::right("OOM"),
        Column::right("PIDS"),
        Column::right("RESTARTS"),
        Column::left("HEALTH"),
        Column::right("CUT"),
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.task.clone(),
            self.container.clone(),
            self.state.clone(),
            format!("{:.1}", self.cpu_percent),
            human_size(self.memory_bytes),
            self.memory_limit_bytes.map_or("-".into(), human_size),
            self.oom_kills.to_string(),
            self.pids.to_string(),
            self.restarts.to_string(),
            self.health.clone(),
            self.log_lines_cut.to_string(),
        ]
    }
}

/// The rows of a report.
pub fn rows(r: &MetricsReport) -> Vec<TopRow> {
    r.containers
        .iter()
        .map(|c| TopRow {
            task: c.task.clone(),
            container: c.container.clone(),
            state: c.state.clone(),
            cpu_percent: c.cpu_millis as f64 / 10.0,
            memory_bytes: c.memory_bytes,
            memory_limit_bytes: c.memory_limit_bytes,
            oom_kills: c.oom_kills,
            pids: c.pids,
            restarts: c.restarts,
            health: c.health.clone(),
            log_lines_cut: c.log_lines_cut,
        })
        .collect()
}

/// The whole screen: a device line, then the table.
pub fn screen(name: &str, r: &MetricsReport) -> String {
    let d = &r.device;
    let cells: Vec<Vec<String>> = rows(r).iter().map(Row::cells).collect();
    format!(
        "{name}  at {}  load {:.2}  mem {} free of {}  disk {} free  up {}s  agent rss {}\n\n{}",
        crate::runtime::logfile::format_rfc3339_ms(r.at_ms),
        d.load1_milli as f64 / 1000.0,
        human_size(d.memory_available_bytes),
        human_size(d.memory_total_bytes),
        human_size(d.state_disk_free_bytes),
        d.uptime_secs,
        human_size(d.agent_rss_bytes),
        render_table(TopRow::COLUMNS, &cells)
    )
}

/// Clears the terminal and moves home (redraw in place).
pub const CLEAR: &str = "\x1b[H\x1b[2J";
