//! The entries of a document, from the operator's files: `NAME.json` is a task
//! definition run once, `NAME.service.json` a service (the standalone desired
//! directory's shapes). Each is validated here with the device's own `spec` code,
//! minified, and a service's `taskDefinition` file path is inlined.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;
use skerry_core::proto::{DeploymentDoc, Entry};
use skerry_core::spec::{parse_task_definition, validate_name, ParseOptions};

use crate::cli::run::read_task_definition_text;
use crate::supervisor::desired::parse_service_text;

/// Tasks and services of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    pub tasks: Vec<Entry>,
    pub services: Vec<Entry>,
}

/// ctl does not know each device's `allow_privileged`: it lets the device decide.
fn opts() -> ParseOptions {
    ParseOptions {
        allow_privileged: true,
    }
}

fn minify(path: &Path, text: &str) -> anyhow::Result<String> {
    let v: Value =
        serde_json::from_str(text).with_context(|| format!("{}: not JSON", path.display()))?;
    Ok(v.to_string())
}

/// A task definition file, checked; returns (family, minified JSON).
fn task_file(path: &Path) -> anyhow::Result<(String, String)> {
    let text = read_task_definition_text(path).map_err(anyhow::Error::msg)?;
    let def = parse_task_definition(&text, &opts())
        .map_err(|e| anyhow::anyhow!("{}: invalid task definition:\n{e}", path.display()))?;
    Ok((def.family.clone(), minify(path, &text)?))
}

/// A service file, checked, its `taskDefinition` inlined.
fn service_json(path: &Path, text: &str) -> anyhow::Result<String> {
    let mut v: Value =
        serde_json::from_str(text).with_context(|| format!("{}: not JSON", path.display()))?;
    if let Some(Value::String(rel)) = v.get("taskDefinition") {
        let file = path.parent().unwrap_or(Path::new(".")).join(rel);
        let def_text = read_task_definition_text(&file).map_err(anyhow::Error::msg)?;
        let def: Value = serde_json::from_str(&def_text)
            .with_context(|| format!("{}: not JSON", file.display()))?;
        v["taskDefinition"] = def;
    }
    let json = v.to_string();
    parse_service_text(&json, &opts(), None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(json)
}

fn add_file(path: &Path, out: &mut Entries) -> anyhow::Result<()> {
    let fname = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(name) = fname.strip_suffix(".service.json") {
        validate_name("service name (file name)", name)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let text = read_task_definition_text(path).map_err(anyhow::Error::msg)?;
        out.services.push(Entry {
            name: name.to_string(),
            json: service_json(path, &text)?,
        });
    } else if let Some(name) = fname.strip_suffix(".json") {
        validate_name("task name (file name)", name)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        out.tasks.push(Entry {
            name: name.to_string(),
            json: task_file(path)?.1,
        });
    } else {
        anyhow::bail!(
            "{}: expected NAME.json (a task definition) or NAME.service.json (a service)",
            path.display()
        );
    }
    Ok(())
}

/// Entries of files and directories (a directory's `*.json`, as the agent reads it).
pub fn read_paths(paths: &[PathBuf]) -> anyhow::Result<Entries> {
    let mut out = Entries::default();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| p.display().to_string())?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                add_file(&f, &mut out)?;
            }
        } else {
            add_file(p, &mut out)?;
        }
    }
    let mut names: Vec<&str> = out
        .tasks
        .iter()
        .chain(&out.services)
        .map(|e| e.name.as_str())
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!(
            "{} is given twice (a task and a service share one namespace)",
            w[0]
        );
    }
    Ok(out)
}

/// One task (`service` None) or service entry from a task definition file.
pub fn one_entry(
    path: &Path,
    service: Option<&str>,
    count: u32,
    name: Option<&str>,
) -> anyhow::Result<(bool, Entry)> {
    let (family, json) = task_file(path)?;
    match service {
        Some(s) => {
            validate_name("service name", s).map_err(anyhow::Error::msg)?;
            let svc = serde_json::json!({"taskDefinition": serde_json::from_str::<Value>(&json)?, "desiredCount": count});
            let text = svc.to_string();
            parse_service_text(&text, &opts(), None).map_err(anyhow::Error::msg)?;
            Ok((
                true,
                Entry {
                    name: s.to_string(),
                    json: text,
                },
            ))
        }
        None => {
            let n = name.unwrap_or(&family).to_string();
            validate_name("task name", &n).map_err(anyhow::Error::msg)?;
            Ok((false, Entry { name: n, json }))
        }
    }
}

fn of(doc: Option<&DeploymentDoc>) -> Entries {
    doc.map(|d| Entries {
        tasks: d.tasks.clone(),
        services: d.services.clone(),
    })
    .unwrap_or_default()
}

/// The current entries with `entry` added or replacing the one of its name.
pub fn upsert(
    current: Option<&DeploymentDoc>,
    (is_service, entry): (bool, Entry),
) -> anyhow::Result<Entries> {
    let mut e = of(current);
    e.tasks.retain(|x| x.name != entry.name);
    e.services.retain(|x| x.name != entry.name);
    if is_service {
        // Keep the deployment settings of a service that is being updated.
        let prev = current.and_then(|d| d.services.iter().find(|s| s.name == entry.name));
        let mut v: Value = serde_json::from_str(&entry.json)?;
        if let Some(Ok(old)) = prev.map(|p| serde_json::from_str::<Value>(&p.json)) {
            if let Some(dc) = old.get("deploymentConfiguration") {
                v["deploymentConfiguration"] = dc.clone();
            }
        }
        e.services.push(Entry {
            name: entry.name,
            json: v.to_string(),
        });
    } else {
        e.tasks.push(entry);
    }
    Ok(e)
}

/// The current entries without `name`.
pub fn remove(current: Option<&DeploymentDoc>, name: &str) -> anyhow::Result<Entries> {
    let mut e = of(current);
    let before = e.tasks.len() + e.services.len();
    e.tasks.retain(|x| x.name != name);
    e.services.retain(|x| x.name != name);
    if e.tasks.len() + e.services.len() == before {
        anyhow::bail!("{name}: not in the target's document");
    }
    Ok(e)
}
