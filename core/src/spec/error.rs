//! The one error type of task-definition parsing: every problem found, each with the
//! JSON path it concerns, plus the collector the validators push into and the
//! translation of serde errors (malformed JSON, unknown fields, wrong types).

use std::fmt;

/// A task definition was refused. Lists every problem found, not just the first;
/// displays one problem per line as `path: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct SpecError {
    /// What is wrong, in document order as far as possible. Never empty.
    pub problems: Vec<FieldProblem>,
}

/// One refusal: the JSON path (e.g. `containerDefinitions[1].memory`) and why.
///
/// The path is empty when the problem concerns the document as a whole (malformed
/// JSON); it is then displayed as the reason alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted JSON path with `[i]` array indexes, relative to the document given.
    pub path: String,
    /// Lowercase, no final period.
    pub reason: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

fn render(problems: &[FieldProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Collects problems while validating. `prefix` is prepended to every path
/// (`taskDefinition.` for describe-task-definition output).
#[derive(Debug, Default)]
pub(crate) struct Problems {
    prefix: String,
    list: Vec<FieldProblem>,
}

impl Problems {
    pub(crate) fn new(prefix: &str) -> Self {
        Problems {
            prefix: prefix.to_string(),
            list: Vec::new(),
        }
    }

    /// Records that `path` (relative to the task definition) is wrong because `reason`.
    pub(crate) fn push(&mut self, path: impl AsRef<str>, reason: impl Into<String>) {
        let path = path.as_ref();
        let full = if path.is_empty() {
            self.prefix.trim_end_matches('.').to_string()
        } else {
            format!("{}{path}", self.prefix)
        };
        self.list.push(FieldProblem {
            path: full,
            reason: reason.into(),
        });
    }

    /// Records `result`'s error, if any, at `path`.
    pub(crate) fn check(&mut self, path: impl AsRef<str>, result: Result<(), String>) {
        if let Err(reason) = result {
            self.push(path, reason);
        }
    }

    /// `Ok(value)` when nothing was recorded, else every problem.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, SpecError> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(SpecError {
                problems: self.list,
            })
        }
    }
}

/// Translates a serde error on the typed pass into one problem at its JSON path.
pub(crate) fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> SpecError {
    let mut path = match err.path().to_string() {
        root if root == "." => String::new(),
        path => path,
    };
    let inner = err.into_inner();
    let mut message = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    if let Some(stripped) = message.strip_suffix(&position) {
        message = stripped.to_string();
    }
    let reason = if message.starts_with("unknown field") {
        unknown_field_reason(&path, &message)
    } else if let Some(field) = quoted(&message).filter(|_| message.starts_with("duplicate field"))
    {
        path = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        "is given twice".to_string()
    } else {
        plain_types(&message)
    };
    SpecError {
        problems: vec![FieldProblem { path, reason }],
    }
}

/// The first `backquoted` word of a serde message.
fn quoted(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// Says serde's type errors in JSON's words (no Rust type or struct names).
fn plain_types(message: &str) -> String {
    if message.starts_with("invalid length") && message.contains("expected struct") {
        return "invalid type: array, expected an object".to_string();
    }
    let mut out = match message.split_once(", expected struct ") {
        Some((head, _)) => format!("{head}, expected an object"),
        None => message.to_string(),
    };
    for (rust, json) in [
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
        ("invalid type: map", "invalid type: object"),
        ("invalid type: sequence", "invalid type: array"),
    ] {
        out = out.replace(rust, json);
    }
    out
}

/// Translates a syntax error from the first pass (the JSON itself is malformed).
pub(crate) fn malformed(err: &serde_json::Error) -> SpecError {
    let mut message = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    if let Some(stripped) = message.strip_suffix(&position) {
        message = stripped.to_string();
    }
    let reason = if err.is_syntax() || err.is_eof() {
        format!(
            "malformed json at line {}, column {}: {message}",
            err.line(),
            err.column()
        )
    } else {
        format!(
            "the document must be a task definition object: {message} (line {}, column {})",
            err.line(),
            err.column()
        )
    };
    SpecError {
        problems: vec![FieldProblem {
            path: String::new(),
            reason,
        }],
    }
}

/// `unknown field`, plus a suggestion when a known field is a likely typo of it.
/// serde's message reads ``unknown field `memry`, expected one of `name`, `image`, …``.
fn unknown_field_reason(path: &str, message: &str) -> String {
    let typo = path.rsplit('.').next().unwrap_or(path);
    let expected = message.split_once("expected").map_or("", |(_, rest)| rest);
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (edit_distance(typo, known), known))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance);
    match best {
        Some((_, known)) => format!("unknown field (did you mean `{known}`?)"),
        None => "unknown field".to_string(),
    }
}

/// Levenshtein distance, ASCII case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;

    #[test]
    fn display_is_one_problem_per_line() {
        let mut problems = Problems::new("");
        problems.push("family", "is required");
        problems.push(
            "containerDefinitions[1].memory",
            "must be at least 6 MiB, got 4",
        );
        let err = problems.finish(()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "family: is required\ncontainerDefinitions[1].memory: must be at least 6 MiB, got 4"
        );
    }

    #[test]
    fn prefix_is_prepended() {
        let mut problems = Problems::new("taskDefinition.");
        problems.push("family", "is required");
        problems.push("", "whole document");
        let err = problems.finish(()).unwrap_err();
        assert_eq!(err.problems[0].path, "taskDefinition.family");
        assert_eq!(err.problems[1].path, "taskDefinition");
    }

    #[test]
    fn serde_messages_in_json_words() {
        assert_eq!(
            plain_types("invalid type: null, expected struct RawTaskDefinition"),
            "invalid type: null, expected an object"
        );
        assert_eq!(
            plain_types("invalid length 1, expected struct RawRestartPolicy with 3 elements"),
            "invalid type: array, expected an object"
        );
        assert_eq!(
            plain_types("invalid type: map, expected a sequence"),
            "invalid type: object, expected an array"
        );
        assert_eq!(
            plain_types("invalid value: integer `-1`, expected u32"),
            "invalid value: integer `-1`, expected a whole number ≥ 0"
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("memry", "memory"), 1);
        assert_eq!(edit_distance("Memory", "memory"), 0);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }
}
