//! `skerry image import|pull|ls|rm`: the local image store.

use std::path::PathBuf;

use clap::Subcommand;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an OCI image layout directory or OCI archive (.tar, .tar.gz).
    Import {
        path: PathBuf,
        /// Repository name for the image's tags (default: from the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Pull an image from a registry (resumable; see [images] and [registries] in the config).
    Pull(super::pull::PullArgs),
    /// List images.
    Ls,
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
        ImageCommand::Pull(args) => super::pull::pull(ctx, args),
        ImageCommand::Ls => {
            println!("{:<40} {:<8} {:>10}  DIGEST", "REFERENCE", "ARCH", "SIZE");
            for i in store.list()? {
                println!(
                    "{:<40} {:<8} {:>10}  {}",
                    i.reference, i.architecture, i.size_bytes, i.manifest_digest
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
    }
}
