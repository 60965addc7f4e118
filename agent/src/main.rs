//! The `skerry` binary: parse arguments, set up logging, dispatch. The internal
//! `monitor` and `init` commands run before any thread or runtime exists.

use clap::Parser;

fn main() {
    let cli = skerry::cli::Cli::parse();
    let internal = matches!(
        cli.command,
        skerry::cli::Command::Monitor(_) | skerry::cli::Command::Init { .. }
    );
    if !internal {
        skerry::logging::init();
    }
    std::process::exit(skerry::cli::dispatch(cli));
}
