//! `skerry image import|ls|rm`: the local image store. `ls` follows
//! [`super::output`]: a table with human sizes, or `--output json` with bytes.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::output::{human_size, print_rows, Column, OutputArgs, Row};
use super::Context;
use crate::images::ImageSummary;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an OCI image layout directory or OCI archive (.tar, .tar.gz).
    Import {
        path: PathBuf,
        /// Repository name for the image's tags (default: from the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List images.
    Ls {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Remove an image reference and the blobs and layers nothing else uses.
    Rm { reference: String },
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
        ImageCommand::Ls { output } => {
            let rows: Vec<ImageRow> = store.list()?.into_iter().map(ImageRow).collect();
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
    }
}

/// One image as listed: the JSON form is the store's summary (size in bytes).
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ImageRow(ImageSummary);

impl Row for ImageRow {
    const COLUMNS: &'static [Column] = &[
        Column::left("REFERENCE"),
        Column::left("ARCH"),
        Column::right("SIZE"),
        Column::left("DIGEST"),
    ];

    fn cells(&self) -> Vec<String> {
        let i = &self.0;
        vec![
            i.reference.clone(),
            i.architecture.clone(),
            human_size(i.size_bytes),
            i.manifest_digest.clone(),
        ]
    }
}
