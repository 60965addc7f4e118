//! `skerry image pull REF [--platform os/arch[/variant]]`: a registry pull into the
//! local store, with a progress bar on a terminal and plain lines otherwise; prints
//! the reference, manifest digest and size at the end.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Context;
use crate::images::pull::{PullEvent, PullOptions};
use crate::images::Platform;

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Image reference: [host[:port]/]name[:tag][@sha256:digest].
    pub reference: String,
    /// Platform to pick from a multi-platform image (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Give up after this many attempts in a row that bring no new bytes (0: never).
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

pub fn pull(ctx: &Context, args: PullArgs) -> anyhow::Result<i32> {
    let store = ctx.images()?;
    let mut opts = PullOptions::from_config(&ctx.config);
    if let Some(p) = &args.platform {
        match Platform::parse(p) {
            Ok(p) => opts.platform = Some(p),
            Err(e) => {
                eprintln!("skerry: image pull: {e}");
                return Ok(2);
            }
        }
    }
    opts.give_up_after = (args.retries > 0).then_some(args.retries);
    let bar = std::io::stderr().is_terminal().then(new_bar);
    opts.progress = Some(reporter(bar.clone()));
    let result = store.pull(&args.reference, &opts);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(s) => {
            println!(
                "{} {} {}",
                s.image.reference, s.image.manifest_digest, s.image.size_bytes
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("skerry: image pull {}: {e}", args.reference);
            Ok(1)
        }
    }
}

fn new_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Sums the bytes on disk of every blob into the bar, or prints a line per step (and
/// per 10% of the download) when stderr is not a terminal.
fn reporter(bar: Option<ProgressBar>) -> crate::images::pull::Progress {
    let blobs: Mutex<std::collections::HashMap<String, u64>> = Mutex::default();
    let last_tenth = Mutex::new(0u64);
    let total = Mutex::new(0u64);
    Arc::new(move |event: &PullEvent| match event {
        PullEvent::Resolved {
            manifest,
            layers,
            missing_bytes,
            ..
        } => {
            *total.lock().unwrap_or_else(|e| e.into_inner()) = *missing_bytes;
            match &bar {
                Some(b) => {
                    b.set_length(*missing_bytes);
                    b.set_message(short(manifest));
                }
                None => eprintln!(
                    "manifest {manifest}: {layers} layers, {missing_bytes} bytes to fetch"
                ),
            }
        }
        PullEvent::Blob {
            digest, on_disk, ..
        } => {
            let mut blobs = blobs.lock().unwrap_or_else(|e| e.into_inner());
            blobs.insert(digest.clone(), *on_disk);
            let sum: u64 = blobs.values().sum();
            match &bar {
                Some(b) => b.set_position(sum),
                None => {
                    let total = *total.lock().unwrap_or_else(|e| e.into_inner());
                    let tenth = (sum * 10).checked_div(total).unwrap_or(10);
                    let mut last = last_tenth.lock().unwrap_or_else(|e| e.into_inner());
                    if tenth > *last {
                        *last = tenth;
                        eprintln!("fetched {sum}/{total} bytes");
                    }
                }
            }
        }
        PullEvent::Retry { what, error, delay } => {
            let line = format!(
                "retrying {} in {:.1} s: {error}",
                short(what),
                delay.as_secs_f32()
            );
            match &bar {
                Some(b) => b.println(line),
                None => eprintln!("{line}"),
            }
        }
        PullEvent::Unpacking => match &bar {
            Some(b) => b.set_message("unpacking"),
            None => eprintln!("unpacking"),
        },
    })
}

fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .map_or_else(|| digest.to_owned(), |h| h.chars().take(12).collect())
}
