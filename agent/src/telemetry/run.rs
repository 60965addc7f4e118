//! Telemetry's loop: a 250 ms tick on a current-thread runtime. Discovery every
//! 2 s, cgroup samples every `sample_secs`, a report every `publish_secs`, the log
//! files of shipped containers every tick (unless the queue is half full: then the
//! lines wait in their files, which are the disk buffer while offline). A metrics
//! report is stored in the spool ([`super::spool`], fsynced) before it is queued and
//! leaves it once acknowledged; on start what the spool holds is queued first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skerry_core::proto::{Body, Envelope};
use skerry_core::spec::LineFilter;
use skerry_core::telemetry::aggregate::{Aggregate, Sample};
use skerry_core::telemetry::batch::{pack_grouped, BatchRule};
use skerry_core::telemetry::multiline::EventGrouper;
use skerry_core::telemetry::rate::{parse_stamp_ms, LineBudget};
use skerry_core::telemetry::{ContainerMetrics, LogBatch, LogLine, MetricsReport};

use super::discover::{self, Watched};
use super::spool::{self, Spool};
use super::tail::{self, Cursor};
use super::uplink::{AckMark, Item, Uplink};
use super::{cgroup, device, local_report_path, prom, TelemetryConfig};
use crate::runtime::logfile::parse_line;
use crate::store::{write_atomic, StateLayout};
use crate::sync::LinkSetup;

const CURSOR_FILE: &str = "ship.cursor";
/// Bytes of log text read per container per tick at most.
const READ_PER_TICK: usize = 64 * 1024;

/// Starts the telemetry thread (`link`: where to publish; `None`: local only).
pub fn spawn(
    layout: StateLayout,
    cfg: TelemetryConfig,
    link: Option<LinkSetup>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("telemetry".into())
        .spawn(move || {
            super::lower_priority();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run(layout, cfg, link)),
                Err(e) => tracing::error!(error = %e, "telemetry: no runtime; telemetry off"),
            }
        })?;
    Ok(())
}

#[derive(Default)]
struct Shipper {
    group: String,
    stream: String,
    cursor_path: PathBuf,
    cursor: Cursor,
    budget: Option<LineBudget>,
    /// The `skerry` driver's filters and batch size; `None`: ship every line, the
    /// agent's batch size.
    filter: Option<LineFilter>,
    max_lines: Option<usize>,
    /// awslogs' multiline grouping, when the container asks for it.
    grouper: Option<EventGrouper>,
    pending: Vec<LogLine>,
    /// Per pending line: whether it continues the event of the line before it.
    pending_continues: Vec<bool>,
    pending_first: u64,
    oldest_ms: u64,
    lost: u64,
    lost_files_seen: u64,
}

#[derive(Default)]
struct Watch {
    info: Option<Watched>,
    agg: Aggregate,
    last: cgroup::CgroupStats,
    prev_sample: Option<Sample>,
    cpu_now_millis: u64,
    ship: Option<Shipper>,
    oom: OomCount,
}

/// OOM kills across restarts: a restarted container gets a fresh cgroup (its
/// counter starts at 0) and the kill that ended it may land between two samples, so
/// each ended run counts the larger of its counter and the supervisor's exit reason.
#[derive(Default)]
struct OomCount {
    ended_runs: u64,
    this_run: u64,
    /// The run (restart count) whose exit was counted.
    counted_run: Option<u32>,
}

impl OomCount {
    fn total(&self) -> u64 {
        self.ended_runs + self.this_run
    }
}

struct State {
    layout: StateLayout,
    cfg: TelemetryConfig,
    link: Option<(LinkSetup, Uplink)>,
    /// Metrics reports kept on disk until acknowledged (with a link only).
    spool: Option<Spool>,
    watches: BTreeMap<(String, String), Watch>,
    begun: Instant,
    unified: bool,
    rule: BatchRule,
    period_start_ms: u64,
    latest: Arc<Mutex<Option<MetricsReport>>>,
}

async fn run(layout: StateLayout, cfg: TelemetryConfig, link: Option<LinkSetup>) {
    let latest = Arc::new(Mutex::new(None));
    match cfg.listen() {
        Ok(Some(l)) => prom::serve(l, latest.clone()),
        Ok(None) => {}
        Err((k, e)) => tracing::error!(key = k, error = %e, "telemetry: no Prometheus endpoint"),
    }
    let mut spool = None;
    let uplink = link.map(|s| {
        let mut u = Uplink::connect(&s, cfg.queue_max_bytes);
        let sp = Spool::open(&spool::dir(layout.root()), cfg.spool_max_bytes);
        // What an earlier run spooled goes first, in order, ahead of anything new.
        let held = sp.load();
        if !held.is_empty() {
            tracing::info!(
                reports = held.len(),
                dropped = sp.dropped(),
                "telemetry: unacknowledged reports reloaded from the spool"
            );
        }
        for e in held {
            u.push(Item {
                topic: e.topic,
                payload: e.payload,
                mark: None,
                lines: None,
                spool: Some(e.seq),
            });
        }
        spool = Some(sp);
        (s, u)
    });
    let mut st = State {
        rule: BatchRule {
            max_lines: cfg.batch_lines,
            max_bytes: cfg.batch_bytes,
            max_wait_ms: cfg.batch_wait_ms,
        },
        layout,
        cfg,
        link: uplink,
        spool,
        watches: BTreeMap::new(),
        begun: Instant::now(),
        unified: cgroup::unified(),
        period_start_ms: 0,
        latest,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let (mut next_discover, mut next_sample, mut next_publish) = (0, 0, st.cfg.publish_secs * 1000);
    loop {
        let ev = match st.link.as_mut() {
            Some((_, u)) => tokio::select! {
                ev = u.events.recv() => ev,
                _ = tick.tick() => None,
            },
            None => {
                tick.tick().await;
                None
            }
        };
        if ev.is_none() {
            // Acks leave the spool once per tick: one `acked` write for a burst of
            // PUBACKs after an outage (a crash before it resends those: at least once).
            if let (Some((_, u)), Some(sp)) = (st.link.as_ref(), st.spool.as_mut()) {
                if u.spool_acked > sp.acked() {
                    sp.ack(u.spool_acked);
                }
            }
        }
        if let Some(ev) = ev {
            if let Some((_, u)) = st.link.as_mut() {
                // Only the newest mark of each cursor file matters.
                let marks = u.on_event(ev);
                for (i, m) in marks.iter().enumerate() {
                    if !marks[i + 1..].iter().any(|n| n.path == m.path) {
                        store_cursor(m);
                    }
                }
            }
        }
        let now = st.begun.elapsed().as_millis() as u64;
        if now >= next_discover {
            st.discover();
            next_discover = now + 2000;
        }
        if now >= next_sample {
            st.sample(now);
            next_sample = now + st.cfg.sample_secs * 1000;
        }
        if now >= next_publish {
            st.publish(now);
            next_publish = now + st.cfg.publish_secs * 1000;
        }
        st.logs(now);
        if let Some((_, u)) = st.link.as_mut() {
            u.pump();
        }
    }
}

fn store_cursor(mark: &AckMark) {
    match serde_json::to_vec(&mark.cursor) {
        Ok(b) => {
            if let Err(e) = write_atomic(&mark.path, &b) {
                tracing::debug!(path = %mark.path.display(), error = %e, "telemetry: cursor not stored");
            }
        }
        Err(e) => tracing::debug!(error = %e, "telemetry: cursor not encoded"),
    }
}

fn load_cursor(path: &std::path::Path) -> Cursor {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl State {
    fn discover(&mut self) {
        let found = discover::containers(&self.layout);
        let keys: Vec<_> = found
            .iter()
            .map(|w| (w.task.clone(), w.container.clone()))
            .collect();
        self.watches.retain(|k, _| keys.contains(k));
        let shipping = self.link.is_some();
        for w in found {
            let key = (w.task.clone(), w.container.clone());
            let entry = self.watches.entry(key.clone()).or_default();
            if entry.ship.is_none() && shipping {
                if let Some((group, stream)) = &w.ship {
                    let cursor_path = w.log_dir.join(CURSOR_FILE);
                    let mut cursor = load_cursor(&cursor_path);
                    if cursor.epoch == 0 {
                        cursor.epoch = crate::runtime::record::now_ms();
                    }
                    let own = w.driver.as_ref();
                    entry.ship = Some(Shipper {
                        group: group.clone(),
                        stream: stream.clone(),
                        budget: own.map(|d| {
                            LineBudget::new(
                                d.lines_per_sec.unwrap_or(self.cfg.log_lines_per_sec),
                                d.burst.unwrap_or(self.cfg.log_burst),
                            )
                        }),
                        filter: own.map(LineFilter::new),
                        max_lines: own.and_then(|d| d.batch_lines),
                        grouper: w.multiline.as_ref().and_then(|(pattern, flush)| {
                            EventGrouper::from_pattern(pattern, *flush)
                                .map_err(|e| {
                                    tracing::warn!(task = %key.0, container = %key.1, error = %e,
                                        "telemetry: multiline pattern not usable, lines shipped ungrouped");
                                })
                                .ok()
                        }),
                        cursor_path,
                        cursor,
                        lost_files_seen: cursor.lost_files,
                        pending_first: cursor.lines + 1,
                        ..Shipper::default()
                    });
                }
            }
            entry.info = Some(w);
        }
    }

    fn sample(&mut self, now: u64) {
        for w in self.watches.values_mut() {
            let Some(info) = &w.info else { continue };
            if info.state == "EXITED" && w.oom.counted_run != Some(info.restarts) {
                let by_exit = u64::from(info.exit_reason == "OutOfMemory");
                w.oom.ended_runs += w.oom.this_run.max(by_exit);
                w.oom.this_run = 0;
                w.oom.counted_run = Some(info.restarts);
                w.prev_sample = None;
            }
            let Some(s) = cgroup::read_stats(&info.cgroup_path, self.unified) else {
                // Not running (its cgroup is gone): nothing in use.
                w.last.memory_bytes = 0;
                w.last.pids = 0;
                w.cpu_now_millis = 0;
                continue;
            };
            let sample = Sample {
                at_ms: now,
                cpu_total_ns: s.cpu_total_ns,
                memory_bytes: s.memory_bytes,
            };
            if let Some(p) = w
                .prev_sample
                .filter(|p| now > p.at_ms && s.cpu_total_ns >= p.cpu_total_ns)
            {
                w.cpu_now_millis =
                    (s.cpu_total_ns - p.cpu_total_ns) * 1000 / ((now - p.at_ms) * 1_000_000);
            }
            w.prev_sample = Some(sample);
            w.agg.add(sample);
            w.oom.this_run = w.oom.this_run.max(s.oom_kills);
            w.last = s;
        }
        let mut r = self.report(false);
        r.period_ms = now.saturating_sub(self.period_start_ms);
        let path = local_report_path(self.layout.root());
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(bytes) = serde_json::to_vec_pretty(&r) {
            if let Err(e) = write_atomic(&path, &bytes) {
                tracing::debug!(path = %path.display(), error = %e, "telemetry: local report not written");
            }
        }
    }

    /// The current figures; `close` ends the aggregation period.
    fn report(&mut self, close: bool) -> MetricsReport {
        let mut device = device::sample(self.layout.root());
        device.telemetry_dropped = self.link.as_ref().map_or(0, |(_, u)| u.dropped)
            + self.spool.as_ref().map_or(0, Spool::dropped);
        let mut containers = Vec::new();
        for w in self.watches.values_mut() {
            let Some(info) = &w.info else { continue };
            let (cpu_millis, peak) = if close {
                let p = w.agg.close();
                (p.cpu_millis, p.memory_peak_bytes)
            } else {
                (w.cpu_now_millis, w.last.memory_bytes)
            };
            let (cut, lost) = w.ship.as_ref().map_or((0, 0), |s| {
                (s.budget.as_ref().map_or(0, LineBudget::cut), s.lost)
            });
            containers.push(ContainerMetrics {
                task: info.task.clone(),
                container: info.container.clone(),
                cpu_millis,
                cpu_total_ns: w.last.cpu_total_ns,
                throttled_periods: w.last.throttled_periods,
                throttled_ns: w.last.throttled_ns,
                memory_bytes: w.last.memory_bytes,
                memory_peak_bytes: peak,
                memory_limit_bytes: w.last.memory_limit_bytes,
                oom_kills: w.oom.total(),
                pids: w.last.pids,
                restarts: info.restarts,
                health: info.health.clone(),
                state: info.state.clone(),
                log_lines_cut: cut,
                log_lines_lost: lost,
            });
        }
        let r = MetricsReport {
            at_ms: crate::runtime::record::now_ms(),
            period_ms: 0,
            device,
            containers,
        };
        if let Ok(mut l) = self.latest.lock() {
            *l = Some(r.clone());
        }
        r
    }

    fn publish(&mut self, now: u64) {
        let mut r = self.report(true);
        r.period_ms = now.saturating_sub(self.period_start_ms);
        self.period_start_ms = now;
        if let Some((setup, u)) = self.link.as_mut() {
            let topic = setup.topics.metrics(&setup.device);
            // The envelope's number is the spool's (receivers can see a gap or a
            // repeat); 0 when the spool cannot store it.
            let seq = self.spool.as_mut().map_or(0, Spool::next_seq);
            let body = Body::Metrics(r);
            let mut payload = Envelope::new(&setup.device, seq, body.clone()).encode();
            let stored = match self.spool.as_mut() {
                Some(sp) if seq > 0 => sp.append(&topic, &payload),
                _ => None,
            };
            if stored != Some(seq) {
                payload = Envelope::new(&setup.device, stored.unwrap_or(0), body).encode();
            }
            u.push(Item {
                topic,
                payload,
                mark: None,
                lines: None,
                spool: stored,
            });
            if let Some(oldest) = self.spool.as_ref().and_then(Spool::oldest) {
                u.forget_spooled_before(oldest);
            }
        }
    }

    fn logs(&mut self, now: u64) {
        let Some((setup, u)) = self.link.as_mut() else {
            return;
        };
        for (task, container, n) in u.lost.drain(..) {
            if let Some(s) = self
                .watches
                .get_mut(&(task, container))
                .and_then(|w| w.ship.as_mut())
            {
                s.lost += n;
            }
        }
        let room = u.queued_bytes() < self.cfg.queue_max_bytes / 2;
        for ((task, container), w) in self.watches.iter_mut() {
            let (Some(info), Some(s)) = (&w.info, w.ship.as_mut()) else {
                continue;
            };
            if room {
                let (lines, cursor) = tail::read_new(&info.log_dir, s.cursor, READ_PER_TICK);
                if cursor.lost_files > s.lost_files_seen {
                    tracing::warn!(%task, %container, files = cursor.lost_files - s.lost_files_seen,
                        "telemetry: log files rotated away before they were shipped");
                    s.lost_files_seen = cursor.lost_files;
                }
                s.cursor = cursor;
                let budget = s.budget.get_or_insert_with(|| {
                    LineBudget::new(self.cfg.log_lines_per_sec, self.cfg.log_burst)
                });
                for raw in lines {
                    let Some((time, stream, text)) = parse_line(&raw) else {
                        continue;
                    };
                    if s.filter.as_ref().is_some_and(|f| !f.ships(text)) {
                        continue;
                    }
                    let at = parse_stamp_ms(time).unwrap_or(0);
                    if !budget.admit(at) {
                        continue;
                    }
                    if s.pending.is_empty() {
                        s.oldest_ms = now;
                    }
                    let continues = s.grouper.as_mut().is_some_and(|g| g.continues(at, text));
                    s.pending_continues.push(continues);
                    s.pending.push(LogLine {
                        time: time.to_string(),
                        stream: stream.to_string(),
                        text: text.to_string(),
                    });
                }
            }
            let cut = s.budget.as_ref().map_or(0, LineBudget::cut);
            let rule = BatchRule {
                max_lines: s.max_lines.unwrap_or(self.rule.max_lines),
                ..self.rule
            };
            if !rule.due(&s.pending, s.oldest_ms, now) {
                continue;
            }
            // `max_lines` is also a cap: what was read beyond it goes in further
            // batches. Only the last carries the file cursor (the file offset of an
            // earlier line is not known); a restart before it is acknowledged sends
            // the earlier ones again, and receivers drop repeats by line number.
            let mut rest = std::mem::take(&mut s.pending);
            let mut rest_continues = std::mem::take(&mut s.pending_continues);
            while !rest.is_empty() {
                let cap = rule.max_lines.min(rest.len());
                let tail = rest.split_off(cap);
                let lines = std::mem::replace(&mut rest, tail);
                let tail = rest_continues.split_off(cap.min(rest_continues.len()));
                let continued = std::mem::replace(&mut rest_continues, tail)
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c)
                    .map(|(i, _)| i as u32)
                    .collect();
                let n = lines.len() as u64;
                // Admitted lines are numbered densely; cut ones are counted instead.
                let batch = LogBatch {
                    task: task.clone(),
                    container: container.clone(),
                    stream: s.stream.clone(),
                    group: s.group.clone(),
                    epoch: s.cursor.epoch,
                    first_line: s.pending_first,
                    cut,
                    lost: s.lost,
                    lines: pack_grouped(lines, continued),
                    lost_files: s.cursor.lost_files,
                };
                s.pending_first += n;
                let env = Envelope::new(&setup.device, batch.first_line, Body::Logs(batch));
                let mark = rest.is_empty().then(|| AckMark {
                    path: s.cursor_path.clone(),
                    cursor: Cursor {
                        lines: s.pending_first - 1,
                        ..s.cursor
                    },
                });
                u.push(Item {
                    topic: setup.topics.logs(&setup.device, task, container),
                    payload: env.encode(),
                    mark,
                    lines: Some((task.clone(), container.clone(), n)),
                    spool: None,
                });
            }
        }
    }
}
