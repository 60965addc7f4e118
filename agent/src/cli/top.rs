//! `skerry top`: the device's containers and figures from the agent's newest local
//! report (`<state>/telemetry/metrics.json`), with no broker; redrawn every second
//! on a terminal, once otherwise or with `--once`; `--output json` prints the report.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::output::{OutputArgs, OutputFormat};
use crate::context::Context;
use crate::telemetry::{read_local, view};

/// `skerry top` arguments.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Print once and exit (the default when stdout is not a terminal).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn top(ctx: &Context, a: TopArgs) -> anyhow::Result<i32> {
    let root = ctx.layout.root();
    if a.output.format() == OutputFormat::Json {
        let r = read_local(root).map_err(anyhow::Error::msg)?;
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    let live = !a.once && std::io::stdout().is_terminal();
    loop {
        let text = match read_local(root) {
            Ok(r) => view::screen("local", &r),
            Err(e) if !live => anyhow::bail!(e),
            Err(e) => format!("{e}\n"),
        };
        let mut out = std::io::stdout().lock();
        if live {
            out.write_all(view::CLEAR.as_bytes())?;
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if !live {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
