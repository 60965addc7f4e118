//! `skerry-gen man|completions DIR`: writes skerry's man pages or shell completions,
//! generated from the clap definition ([`skerry::cli::generate`]). A build tool for
//! packaging (`cross/package-deb`, `cross/package-overlay`), never shipped: keeping
//! clap_mangen and clap_complete out of the gateway binary saves ~100 KB there. The
//! output is the same for every target, so the host's build serves all of them.

use std::path::PathBuf;

use clap::Parser;
use skerry::cli::generate::{generate_main, Generated};

/// Write skerry's man pages or shell completions into DIR.
#[derive(Debug, Parser)]
#[command(name = "skerry-gen")]
struct Args {
    /// What to generate.
    what: Generated,
    /// Output directory (created if missing).
    dir: PathBuf,
}

fn main() {
    let args = Args::parse();
    std::process::exit(generate_main(args.what, &args.dir));
}
