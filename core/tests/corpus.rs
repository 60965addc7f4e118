//! The corpus of public, real-world ECS task definitions in `tests/corpus/` (sources
//! in its README): each file goes through the parser and must have the outcome its
//! line in `tests/corpus/expected.txt` names, either `accepted` or `refused` with the
//! exact set of JSON paths refused. A refusal added or lost anywhere fails the test.
//! The acceptance figure is printed, not asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use skerry_core::spec::{parse_task_definition, ParseOptions};

/// What a manifest line says about one file.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Refused(BTreeSet<String>),
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// `expected.txt`: `file accepted` or `file refused path[,path...]`; `#` comments.
fn manifest() -> BTreeMap<String, Outcome> {
    let text = std::fs::read_to_string(corpus_dir().join("expected.txt"))
        .expect("tests/corpus/expected.txt is readable");
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let file = words.next().expect("a file name").to_string();
        let outcome = match (words.next(), words.next()) {
            (Some("accepted"), None) => Outcome::Accepted,
            (Some("refused"), Some(paths)) => {
                Outcome::Refused(paths.split(',').map(str::to_string).collect())
            }
            _ => panic!("expected.txt line {}: cannot read {line:?}", n + 1),
        };
        assert!(
            out.insert(file.clone(), outcome).is_none(),
            "expected.txt lists {file} twice"
        );
    }
    out
}

#[test]
fn corpus_outcomes_match_the_manifest() {
    let expected = manifest();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus should hold at least 30 task definitions"
    );

    let (mut accepted, mut external, mut external_accepted) = (0, 0, 0);
    let mut mismatches = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let json = std::fs::read_to_string(path).unwrap();
        let declares_external = serde_json::from_str::<serde_json::Value>(&json)
            .ok()
            .and_then(|v| v.get("requiresCompatibilities").cloned())
            .and_then(|v| v.as_array().cloned())
            .is_some_and(|list| list.iter().any(|v| v == "EXTERNAL"));
        external += usize::from(declares_external);
        let got = match parse_task_definition(&json, &ParseOptions::default()) {
            Ok(_) => {
                accepted += 1;
                external_accepted += usize::from(declares_external);
                println!("{name}: accepted");
                Outcome::Accepted
            }
            Err(err) => {
                println!(
                    "{name}: refused\n  {}",
                    err.to_string().replace('\n', "\n  ")
                );
                Outcome::Refused(err.problems.iter().map(|p| p.path.clone()).collect())
            }
        };
        match expected.get(&name) {
            Some(want) if *want == got => {}
            Some(want) => mismatches.push(format!("{name}: expected {want:?}, got {got:?}")),
            None => mismatches.push(format!("{name}: not listed in expected.txt (got {got:?})")),
        }
    }
    for name in expected.keys() {
        if !files.iter().any(|p| p.ends_with(name)) {
            mismatches.push(format!("{name}: listed in expected.txt but missing"));
        }
    }
    println!(
        "corpus acceptance: {accepted} of {} task definitions; {external_accepted} of the {external} declaring EXTERNAL",
        files.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
