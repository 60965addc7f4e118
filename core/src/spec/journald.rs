//! The `journald` log driver: its options checked as Docker's journald driver takes
//! them (`tag`, `labels`, `labels-regex`, `env`, `env-regex`; anything else refused
//! by name) and the journal
//! fields each of the container's lines carries, as Docker writes them
//! (`CONTAINER_NAME`, `CONTAINER_ID`, `CONTAINER_ID_FULL`, `CONTAINER_TAG`,
//! `SYSLOG_IDENTIFIER`, `IMAGE_NAME`, one field per listed label or variable) plus
//! skerry's own `TASK` and `CONTAINER` (those of the agent's journal entries).
//! Pure: the monitor sends the entries ([`Journald::fields`] computed by the agent).

use std::collections::BTreeMap;

use super::error::Problems;
use super::logs::LogDriver;
use super::skerry_logs::{checked_pattern, compile_regex};

/// The options of Docker's journald driver that skerry takes.
const OPTIONS: [&str; 5] = ["tag", "labels", "labels-regex", "env", "env-regex"];

/// The fields a `tag` template may name (Docker's log tag context).
const TAG_FIELDS: [&str; 7] = [
    ".ID",
    ".FullID",
    ".Name",
    ".ImageName",
    ".ImageID",
    ".ImageFullID",
    ".DaemonName",
];

/// `journald` options, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Journald {
    /// `tag`: a Docker log tag template (`{{.Name}}`, `{{.ID}}` …); Docker's default is `{{.ID}}`.
    pub tag: Option<String>,
    /// `labels`: `dockerLabels` keys whose values go into each entry.
    pub labels: Vec<String>,
    /// `env`: `environment` names whose values go into each entry.
    pub env: Vec<String>,
    /// `labels-regex`: labels whose keys match also go into each entry (Docker's
    /// rule: the union with `labels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_regex: Option<String>,
    /// `env-regex`: variables whose names match also go into each entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_regex: Option<String>,
}

/// What the fields are made of, known when the container is prepared.
#[derive(Debug, Clone, Copy)]
pub struct JournalContext<'a> {
    pub task_id: &'a str,
    /// The container's name in the task definition.
    pub container: &'a str,
    /// skerry's container id (`<task>.<container>`).
    pub container_id: &'a str,
    /// The image as the definition names it.
    pub image_name: &'a str,
    /// The image's config digest (`sha256:…`), if known.
    pub image_id: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub environment: &'a BTreeMap<String, String>,
}

pub(crate) fn check(options: &BTreeMap<String, String>, at: &str, p: &mut Problems) -> LogDriver {
    for name in options.keys() {
        if !OPTIONS.contains(&name.as_str()) {
            p.push(
                format!("{at}.{name}"),
                "is not a journald log driver option (tag, labels, labels-regex, env and env-regex are)",
            );
        }
    }
    let tag = options.get("tag").cloned();
    if let Some(t) = &tag {
        if let Err(e) = expand_tag(t, &|_| String::new()) {
            p.push(format!("{at}.tag"), e);
        }
    }
    let list = |name: &str, p: &mut Problems| -> Vec<String> {
        let Some(v) = options.get(name) else {
            return Vec::new();
        };
        let names: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
        if names.iter().any(String::is_empty) {
            p.push(
                format!("{at}.{name}"),
                format!("must be names separated by commas, got {v:?}"),
            );
        }
        names.into_iter().filter(|n| !n.is_empty()).collect()
    };
    let labels = list("labels", p);
    let env = list("env", p);
    let pattern = |name: &str, p: &mut Problems| -> Option<String> {
        checked_pattern(options.get(name)?.clone(), format!("{at}.{name}"), p)
    };
    let labels_regex = pattern("labels-regex", p);
    let env_regex = pattern("env-regex", p);
    LogDriver::Journald(Journald {
        tag,
        labels,
        env,
        labels_regex,
        env_regex,
    })
}

/// Expands a Docker log tag template (`{{.Name}}/{{.ID}}`): only the bare fields of
/// [`TAG_FIELDS`] are known; functions and pipelines are refused.
fn expand_tag(tag: &str, value: &dyn Fn(&str) -> String) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = tag;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("{tag:?} has a \"{{{{\" without \"}}}}\""))?;
        let field = after[..close].trim();
        if !TAG_FIELDS.contains(&field) {
            return Err(format!(
                "{{{{{field}}}}} is not a tag template field skerry knows ({})",
                TAG_FIELDS.join(", ")
            ));
        }
        out.push_str(&value(field));
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Docker's journald key rule: letters upper-cased, anything but A-Z and 0-9
/// becomes `_`, leading `_` dropped (journald refuses such keys from clients).
pub fn journal_key(name: &str) -> String {
    let mut key = String::new();
    for c in name.chars() {
        let c = match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        };
        if !(key.is_empty() && c == '_') {
            key.push(c);
        }
    }
    key
}

impl Journald {
    /// The fields every entry of this container carries (not `MESSAGE`, `PRIORITY`
    /// or `CONTAINER_PARTIAL_MESSAGE`, which vary per line).
    pub fn fields(&self, ctx: &JournalContext<'_>) -> Vec<(String, String)> {
        let value = |field: &str| -> String {
            match field {
                ".ID" | ".FullID" => ctx.container_id.to_string(),
                ".Name" => ctx.container.to_string(),
                ".ImageName" => ctx.image_name.to_string(),
                ".ImageID" => ctx
                    .image_id
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect(),
                ".ImageFullID" => ctx.image_id.to_string(),
                _ => "skerry".to_string(),
            }
        };
        let tag = self
            .tag
            .as_deref()
            .and_then(|t| expand_tag(t, &value).ok())
            .unwrap_or_else(|| ctx.container_id.to_string());
        let mut fields = vec![
            ("CONTAINER_NAME".to_string(), ctx.container.to_string()),
            ("CONTAINER_ID".to_string(), ctx.container_id.to_string()),
            (
                "CONTAINER_ID_FULL".to_string(),
                ctx.container_id.to_string(),
            ),
            ("CONTAINER_TAG".to_string(), tag.clone()),
            ("SYSLOG_IDENTIFIER".to_string(), tag),
            ("IMAGE_NAME".to_string(), ctx.image_name.to_string()),
            ("TASK".to_string(), ctx.task_id.to_string()),
            ("CONTAINER".to_string(), ctx.container.to_string()),
        ];
        // Listed names, then those the pattern matches (checked when the definition
        // was), each once, in the map's order.
        let picked = |names: &[String], pattern: Option<&str>, from: &BTreeMap<String, String>| {
            let matcher = pattern.and_then(|p| compile_regex(p).ok());
            from.iter()
                .filter(|(n, _)| {
                    names.contains(n) || matcher.as_ref().is_some_and(|m| m.is_match(n))
                })
                .map(|(n, v)| (journal_key(n), v.clone()))
                .filter(|(k, _)| !k.is_empty())
                .collect::<Vec<_>>()
        };
        fields.extend(picked(
            &self.labels,
            self.labels_regex.as_deref(),
            ctx.labels,
        ));
        fields.extend(picked(
            &self.env,
            self.env_regex.as_deref(),
            ctx.environment,
        ));
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_tag_templates() {
        let v = |f: &str| format!("<{f}>");
        assert_eq!(
            expand_tag("app/{{.Name}}-{{ .ID }}", &v).as_deref(),
            Ok("app/<.Name>-<.ID>")
        );
        assert_eq!(expand_tag("plain", &v).as_deref(), Ok("plain"));
        let err = expand_tag("{{.Name | upper}}", &v).expect_err("pipeline");
        assert!(
            err.contains("{{.Name | upper}} is not a tag template field"),
            "{err}"
        );
        assert!(expand_tag("{{.Name", &v).is_err());
    }

    #[test]
    fn journald_keys_as_docker_sanitizes() {
        assert_eq!(journal_key("com.example.team"), "COM_EXAMPLE_TEAM");
        assert_eq!(journal_key("_hidden"), "HIDDEN");
        assert_eq!(journal_key("Build-Id2"), "BUILD_ID2");
    }

    #[test]
    fn journald_fields_name_the_container_and_the_listed_values() {
        let labels = BTreeMap::from([("com.example.team".to_string(), "edge".to_string())]);
        let environment = BTreeMap::from([("SITE".to_string(), "north".to_string())]);
        let ctx = JournalContext {
            task_id: "web.3",
            container: "app",
            container_id: "web.3.app",
            image_name: "busybox:latest",
            image_id: "sha256:0123456789abcdef",
            labels: &labels,
            environment: &environment,
        };
        let j = Journald {
            tag: Some("{{.Name}}@{{.ImageID}}".into()),
            labels: vec!["com.example.team".into(), "absent".into()],
            env: vec!["SITE".into()],
            labels_regex: None,
            env_regex: None,
        };
        let f: BTreeMap<String, String> = j.fields(&ctx).into_iter().collect();
        assert_eq!(f["CONTAINER_NAME"], "app");
        assert_eq!(f["CONTAINER_ID"], "web.3.app");
        assert_eq!(f["SYSLOG_IDENTIFIER"], "app@0123456789ab");
        assert_eq!(f["IMAGE_NAME"], "busybox:latest");
        assert_eq!(f["TASK"], "web.3");
        assert_eq!(f["CONTAINER"], "app");
        assert_eq!(f["COM_EXAMPLE_TEAM"], "edge");
        assert_eq!(f["SITE"], "north");
        assert!(!f.contains_key("ABSENT"));
        let default_tag = Journald {
            tag: None,
            labels: vec![],
            env: vec![],
            labels_regex: None,
            env_regex: None,
        };
        let f: BTreeMap<String, String> = default_tag.fields(&ctx).into_iter().collect();
        assert_eq!(f["SYSLOG_IDENTIFIER"], "web.3.app");
    }

    #[test]
    fn journald_regex_options_add_the_matching_labels_and_variables() {
        let labels = BTreeMap::from([
            ("com.example.team".to_string(), "edge".to_string()),
            ("com.example.site".to_string(), "north".to_string()),
            ("other".to_string(), "x".to_string()),
        ]);
        let environment = BTreeMap::from([
            ("APP_MODE".to_string(), "prod".to_string()),
            ("APP_PORT".to_string(), "80".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ]);
        let ctx = JournalContext {
            task_id: "t",
            container: "app",
            container_id: "t.app",
            image_name: "busybox",
            image_id: "",
            labels: &labels,
            environment: &environment,
        };
        let options = BTreeMap::from([
            ("labels".to_string(), "other".to_string()),
            ("labels-regex".to_string(), "^com\\.example\\.".to_string()),
            ("env-regex".to_string(), "^APP_".to_string()),
        ]);
        let mut p = Problems::default();
        let LogDriver::Journald(j) = check(&options, "logConfiguration.options", &mut p) else {
            panic!("journald");
        };
        assert!(!format!("{p:?}").contains("path"), "{p:?}");
        let f: BTreeMap<String, String> = j.fields(&ctx).into_iter().collect();
        assert_eq!(f["COM_EXAMPLE_TEAM"], "edge");
        assert_eq!(f["COM_EXAMPLE_SITE"], "north");
        assert_eq!(f["OTHER"], "x");
        assert_eq!(f["APP_MODE"], "prod");
        assert_eq!(f["APP_PORT"], "80");
        assert!(!f.contains_key("HOME"));

        let bad = BTreeMap::from([("env-regex".to_string(), "(".to_string())]);
        let mut p = Problems::default();
        check(&bad, "logConfiguration.options", &mut p);
        let text = format!("{p:?}");
        assert!(
            text.contains("logConfiguration.options.env-regex"),
            "{text}"
        );
        assert!(text.contains("not a valid regular expression"), "{text}");
    }
}
