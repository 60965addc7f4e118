//! `skerry events [--task T] [--service S] [-n N] [-f]`: what the agent decided and
//! saw, oldest first, from the outbox: task launches and stops with their ECS
//! `stoppedReason`, exits, restarts, health changes, deployments, rollbacks, backoff
//! and crash loops. Read-only: it can run while the agent appends. Output follows
//! [`super::output`]; with `-f`, JSON is one object per line.

use std::time::Duration;

use serde::Serialize;

use super::output::{
    age_since, print_json_line, print_rows, rfc3339, Column, OutputArgs, OutputFormat, Row, Table,
};
use super::Context;
use crate::report::{Report, ReportBody};
use crate::store::outbox::read_outbox;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only events of this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only events of this service and its tasks.
    #[arg(long)]
    pub service: Option<String>,
    /// Only the last N events.
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Keep printing new events until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl EventsArgs {
    fn wants(&self, r: &Report) -> bool {
        let task = r.task().map(|t| t.0.as_str());
        if self.task.as_deref().is_some_and(|t| task != Some(t)) {
            return false;
        }
        match self.service.as_deref() {
            None => true,
            Some(s) => {
                r.service() == Some(s)
                    || task.is_some_and(|t| t.strip_prefix(s).is_some_and(|r| r.starts_with('.')))
            }
        }
    }
}

/// One event as listed.
#[derive(Debug, Serialize)]
struct EventRow {
    /// Its number in the outbox.
    seq: u64,
    /// Wall-clock time of the agent when it happened (RFC 3339).
    time: String,
    task: Option<String>,
    service: Option<String>,
    /// What happened, in words.
    text: String,
    /// The report itself: a reconciler event or a fleet event (durations in microseconds).
    event: ReportBody,
    #[serde(skip)]
    wall_ms: u64,
}

impl EventRow {
    fn new(seq: u64, r: Report) -> Self {
        let text = match &r.body {
            ReportBody::Event(e) => e.to_string(),
            ReportBody::Fleet(e) => e.to_string(),
            ReportBody::Pull(p) => p.to_string(),
            ReportBody::Ports(p) => p.to_string(),
            ReportBody::Waiting(w) => w.to_string(),
        };
        Self {
            seq,
            time: rfc3339(r.wall_ms),
            task: r.task().map(|t| t.0.clone()),
            service: r.service().map(str::to_string),
            text,
            event: r.body.clone(),
            wall_ms: r.wall_ms,
        }
    }
}

impl Row for EventRow {
    const COLUMNS: &'static [Column] = &[
        Column::left("TIME"),
        Column::right("AGE"),
        Column::left("EVENT"),
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.time.clone(),
            age_since(self.wall_ms, crate::runtime::record::now_ms()),
            self.text.clone(),
        ]
    }
}

pub fn events(ctx: &Context, args: EventsArgs) -> anyhow::Result<i32> {
    let dir = ctx.layout.outbox();
    let mut rows = Vec::new();
    let mut after = 0;
    for e in read_outbox(&dir, 0, usize::MAX)? {
        after = e.seq;
        match Report::decode(&e.payload) {
            Ok(r) if args.wants(&r) => rows.push(EventRow::new(e.seq, r)),
            Ok(_) => {}
            Err(err) => eprintln!("skerry: report {}: {err}", e.seq),
        }
    }
    let skip = args.last.map_or(0, |n| rows.len().saturating_sub(n));
    let rows = &rows[skip..];
    let format = args.output.format();
    if !args.follow {
        print_rows(format, rows)?;
        return Ok(0);
    }
    let mut table = Table::new(EventRow::COLUMNS);
    let cells: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
    cells.iter().for_each(|c| table.fit(c));
    if format == OutputFormat::Table {
        print!("{}", table.header());
    }
    let mut show = |row: &EventRow, cells: Vec<String>| -> std::io::Result<()> {
        match format {
            OutputFormat::Json => print_json_line(row),
            OutputFormat::Table => {
                table.fit(&cells);
                print!("{}", table.line(&cells));
                Ok(())
            }
        }
    };
    for (row, c) in rows.iter().zip(cells) {
        show(row, c)?;
    }
    loop {
        std::thread::sleep(Duration::from_millis(250));
        for e in read_outbox(&dir, after, 1000)? {
            after = e.seq;
            if let Ok(r) = Report::decode(&e.payload) {
                if args.wants(&r) {
                    let row = EventRow::new(e.seq, r);
                    let cells = row.cells();
                    show(&row, cells)?;
                }
            }
        }
    }
}
