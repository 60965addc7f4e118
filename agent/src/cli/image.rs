//! `skerry image import|pull|ls|rm|prune`: the local image store.

use std::collections::HashSet;
use std::path::PathBuf;

use clap::Subcommand;

use super::Context;
use crate::images::normalize_reference;
use crate::task::{list_tasks, TaskRecord};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an OCI image layout directory or OCI archive (.tar, .tar.gz), every image
    /// its index.json lists.
    Import {
        path: PathBuf,
        /// Repository name for the image's tags (default: from the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Pull an image from a registry (resumable; see [images] and [registries] in the config).
    Pull(super::pull::PullArgs),
    /// List images: size, last use, and whether a desired or existing task uses it.
    Ls,
    /// Remove an image reference and the blobs and layers nothing else uses.
    Rm { reference: String },
    /// Remove images no desired or existing task uses, keeping the most recently used.
    Prune {
        /// Unused images to keep (default: [images] keep_unused).
        #[arg(long)]
        keep: Option<u32>,
    },
}

pub fn image(ctx: &Context, cmd: ImageCommand) -> anyhow::Result<i32> {
    let store = ctx.images()?;
    match cmd {
        ImageCommand::Import { path, name } => match store.import_as(&path, name.as_deref()) {
            Ok(imported) => {
                for i in imported {
                    println!("{} {}", i.reference, i.manifest_digest);
                }
                Ok(0)
            }
            Err(e) => {
                eprintln!("skerry: import {}: {e}", path.display());
                Ok(2)
            }
        },
        ImageCommand::Pull(args) => super::pull::pull(ctx, args),
        ImageCommand::Ls => {
            let used = referenced(ctx);
            let usage = store.usage();
            println!(
                "{:<40} {:<8} {:>10}  {:<20} {:<4} DIGEST",
                "REFERENCE", "ARCH", "SIZE", "LAST USED", "USED"
            );
            for i in store.list()? {
                let last = usage
                    .get(&i.reference)
                    .and_then(|u| u.used_ms.or(u.pulled_ms))
                    .map_or_else(|| "-".to_owned(), format_ms);
                let in_use = if used.contains(&i.reference) {
                    "yes"
                } else {
                    "no"
                };
                println!(
                    "{:<40} {:<8} {:>10}  {:<20} {:<4} {}",
                    i.reference, i.architecture, i.size_bytes, last, in_use, i.manifest_digest
                );
            }
            Ok(0)
        }
        ImageCommand::Rm { reference } => match store.remove(&reference) {
            Ok(()) => {
                println!("{reference}");
                Ok(0)
            }
            Err(e) => {
                eprintln!("skerry: image rm {reference}: {e}");
                Ok(2)
            }
        },
        ImageCommand::Prune { keep } => {
            let keep = keep.unwrap_or(ctx.config.images.keep_unused);
            let report = store.prune(
                usize::try_from(keep).unwrap_or(usize::MAX),
                &referenced(ctx),
            )?;
            for r in &report.untagged {
                println!("{r}");
            }
            eprintln!(
                "pruned {} images, {} blobs ({} bytes), {} layers",
                report.untagged.len(),
                report.gc.blobs_removed,
                report.gc.blob_bytes_freed,
                report.gc.layers_removed
            );
            Ok(0)
        }
    }
}

/// Normalized images of the desired task definitions (standalone directory) and of
/// every task with a record in the state directory.
fn referenced(ctx: &Context) -> HashSet<String> {
    let mut out = HashSet::new();
    let dir = ctx.config.desired_dir();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let Ok(text) = std::fs::read(entry.path()) else {
            continue;
        };
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
            collect_images(&v, &mut out);
        }
    }
    for id in list_tasks(&ctx.layout) {
        if let Ok(Some(rec)) = TaskRecord::load(&ctx.layout, &id) {
            for c in &rec.definition.containers {
                if let Ok(r) = normalize_reference(&c.image) {
                    out.insert(r);
                }
            }
        }
    }
    out
}

/// Every `containerDefinitions[].image` anywhere in a task definition or service file.
fn collect_images(v: &serde_json::Value, out: &mut HashSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(defs)) = map.get("containerDefinitions") {
                for d in defs {
                    if let Some(r) = d
                        .get("image")
                        .and_then(|i| i.as_str())
                        .and_then(|i| normalize_reference(i).ok())
                    {
                        out.insert(r);
                    }
                }
            }
            map.values().for_each(|x| collect_images(x, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| collect_images(x, out)),
        _ => {}
    }
}

/// `2026-12-01 23:10:24` (UTC) from milliseconds since 1970.
fn format_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ls_dates_and_desired_images() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(1_764_630_624_000), "2025-12-01 23:10:24");
        let v: serde_json::Value = serde_json::from_str(
            r#"{"taskDefinition":{"containerDefinitions":[{"image":"a"},{"image":"r.example:5000/b:1"}]},"desiredCount":1}"#,
        )
        .expect("json");
        let mut out = HashSet::new();
        collect_images(&v, &mut out);
        assert!(
            out.contains("a:latest") && out.contains("r.example:5000/b:1"),
            "{out:?}"
        );
    }
}
