//! `skerry image import|pull|ls|rm|prune`: the local image store. `ls` follows
//! [`super::output`]: a table with human sizes and ages, or `--output json` with bytes.

use std::collections::HashSet;
use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::output::{age_since, human_size, print_rows, rfc3339, Column, OutputArgs, Row};
use super::Context;
use crate::images::normalize_reference;
use crate::images::ImageSummary;
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
    Ls {
        #[command(flatten)]
        output: OutputArgs,
    },
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
        ImageCommand::Ls { output } => {
            let used = referenced(ctx);
            let usage = store.usage();
            let now_ms = crate::runtime::record::now_ms();
            let rows: Vec<ImageRow> = store
                .list()?
                .into_iter()
                .map(|i| {
                    let last_ms = usage
                        .get(&i.reference)
                        .and_then(|u| u.used_ms.or(u.pulled_ms));
                    ImageRow {
                        used: used.contains(&i.reference),
                        last_used: last_ms.map(rfc3339),
                        last_ms,
                        now_ms,
                        summary: i,
                    }
                })
                .collect();
            print_rows(output.format(), &rows)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ls_dates_and_desired_images() {
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

/// One image as listed: the JSON form is the store's summary (size in bytes), its last
/// use (RFC 3339) and whether a desired or existing task uses it.
#[derive(Debug, Serialize)]
struct ImageRow {
    #[serde(flatten)]
    summary: ImageSummary,
    last_used: Option<String>,
    used: bool,
    #[serde(skip)]
    last_ms: Option<u64>,
    #[serde(skip)]
    now_ms: u64,
}

impl Row for ImageRow {
    const COLUMNS: &'static [Column] = &[
        Column::left("REFERENCE"),
        Column::left("ARCH"),
        Column::right("SIZE"),
        Column::right("LAST USED"),
        Column::left("USED"),
        Column::left("DIGEST"),
    ];

    fn cells(&self) -> Vec<String> {
        let i = &self.summary;
        vec![
            i.reference.clone(),
            i.architecture.clone(),
            human_size(i.size_bytes),
            self.last_ms
                .map_or_else(|| "-".to_string(), |t| age_since(t, self.now_ms)),
            if self.used { "yes" } else { "no" }.to_string(),
            i.manifest_digest.clone(),
        ]
    }
}
