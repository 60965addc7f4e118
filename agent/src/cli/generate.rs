//! Man pages and shell completions, generated from the clap definition itself so
//! they cannot drift from the commands: `skerry.1` plus one page per subcommand
//! (`skerry-run.1`, `skerry-image-ls.1`, …; hidden internal commands get none), and
//! completions for bash (`skerry`), zsh (`_skerry`) and fish (`skerry.fish`).
//! Packaging runs it at build time through the `skerry-gen` helper binary
//! (`agent/src/bin/skerry-gen.rs`, built for the host by `cross/lib.sh`), not the
//! shipped `skerry`, which would grow by ~100 KB on aarch64 with the generators in it.
//! The output does not depend on the target.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// Man pages, section 1, uncompressed.
    Man,
    /// Completion scripts for bash, zsh and fish.
    Completions,
}

/// The completion scripts' file names, by shell, as their shells look them up.
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "skerry"),
    (Shell::Zsh, "_skerry"),
    (Shell::Fish, "skerry.fish"),
];

/// What `skerry.1` says beyond the commands: files, environment, logs.
const MAIN_PAGE_EXTRA: &str = r#".SH FILES
.TP
\fI/etc/skerry/agent.toml\fR
Agent configuration (TOML). Every key is documented, with its default, in the
installed file. Unknown keys and bad values are refused, naming the key.
.TP
\fI/var/lib/skerry\fR
State directory: images, tasks, container state, the outbox of events.
.TP
\fI/var/lib/skerry/desired\fR
Standalone mode: task definitions (\fI<id>.json\fR) and services
(\fI<name>.service.json\fR) to keep running.
.SH ENVIRONMENT
.TP
\fBSKERRY_LOG\fR
Log level or filter (default \fIinfo\fR).
.TP
\fBSKERRY_CONFIG\fR, \fBSKERRY_STATE_DIR\fR
As \fB\-\-config\fR and \fB\-\-state\-dir\fR.
.SH LOGS
Under systemd the agent writes to the journal natively; each event's fields
are journal fields (\fBTASK\fR, \fBCONTAINER\fR, \fBSERVICE\fR,
\fBEVENT\fR) with its priority:
\fBjournalctl \-u skerry \-p err\fR,
\fBjournalctl \-u skerry TASK=web.1\fR.
Elsewhere it logs to stderr, in colour only on a terminal.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)
"#;

/// Writes what `what` names into `dir` (created if missing); returns the files.
pub fn generate(what: Generated, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The plain version: the pages are the same for every target and build.
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    match what {
        Generated::Man => {
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
            let main = dir.join("skerry.1");
            std::fs::OpenOptions::new()
                .append(true)
                .open(&main)
                .and_then(|mut f| std::io::Write::write_all(&mut f, MAIN_PAGE_EXTRA.as_bytes()))
                .with_context(|| format!("writing {}", main.display()))?;
            let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "1"))
                .collect();
            pages.sort();
            Ok(pages)
        }
        Generated::Completions => {
            let mut files = Vec::new();
            for (shell, name) in COMPLETIONS {
                let path = dir.join(name);
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut cmd.clone(), "skerry", &mut out);
                std::fs::write(&path, out)
                    .with_context(|| format!("writing {}", path.display()))?;
                files.push(path);
            }
            Ok(files)
        }
    }
}

/// `skerry-gen WHAT DIR`: prints the files written; 1 on failure.
pub fn generate_main(what: Generated, dir: &Path) -> i32 {
    match generate(what, dir) {
        Ok(files) => {
            files.iter().for_each(|f| println!("{}", f.display()));
            0
        }
        Err(e) => {
            eprintln!("skerry: {}", super::errtext::error_text(&e));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_man_pages_name_every_visible_subcommand() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pages = generate(Generated::Man, dir.path()).expect("man");
        let main = std::fs::read_to_string(dir.path().join("skerry.1")).expect("skerry.1");
        let cmd = Cli::command();
        let visible: Vec<&str> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name())
            .collect();
        assert!(visible.contains(&"ps") && !visible.contains(&"monitor"));
        for name in visible {
            assert!(
                main.contains(&format!("skerry\\-{name}(1)")),
                "{name} not in skerry.1"
            );
            assert!(
                pages.contains(&dir.path().join(format!("skerry-{name}.1"))),
                "{name}"
            );
        }
        assert!(!main.contains("monitor"), "a hidden command is documented");
    }

    #[test]
    fn generate_completions_for_three_shells() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = generate(Generated::Completions, dir.path()).expect("completions");
        assert_eq!(files.len(), 3);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            assert!(
                text.contains("image") && text.contains("--output"),
                "{}",
                f.display()
            );
        }
    }
}
