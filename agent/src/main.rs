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
        init_tracing();
    }
    std::process::exit(skerry::cli::dispatch(cli));
}

/// Logs to stderr for journald (no timestamps there: journald adds them) or a terminal.
/// Level from SKERRY_LOG (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().with_ansi(false).init();
    } else {
        builder.init();
    }
}
