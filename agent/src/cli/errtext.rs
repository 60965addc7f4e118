//! How the CLI prints an error: the message and its causes on one line, each said
//! once. Many error types quote their cause in their own message *and* return it
//! from `source()`; anyhow's `{:#}` would then print it twice
//! (`agent.toml: line 2: foo: unknown field …: line 2: foo: unknown field …`).

/// `error: cause: cause`, skipping a cause whose text the line already holds.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[test]
    fn error_text_says_each_cause_once() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(Quoting { source: io }).context("loading x");
        assert_eq!(error_text(&e), "loading x: outer: disk on fire");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&plain), "outer: inner");
    }
}
