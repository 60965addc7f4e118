//! Topic names: built from checked fleet, device and group names, never parsed from
//! untrusted text into paths. A name is 1–64 of `[A-Za-z0-9_.-]` (no `/`, `+`, `#`),
//! so a name can never reach another device's topics or act as a wildcard.

use std::fmt;

/// A fleet, device or group name that cannot be used on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {name:?}: {why}")]
pub struct TopicError {
    pub what: &'static str,
    pub name: String,
    pub why: &'static str,
}

/// Checks one topic level name.
pub fn check_name(what: &'static str, name: &str) -> Result<(), TopicError> {
    let err = |why| TopicError {
        what,
        name: name.to_owned(),
        why,
    };
    if name.is_empty() {
        return Err(err("must not be empty"));
    }
    if name.len() > 64 {
        return Err(err("longer than 64 characters"));
    }
    if name == "groups" && what == "device" {
        return Err(err("is reserved for group topics"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(err("may hold only letters, digits, '_', '.' and '-'"));
    }
    if name.starts_with('.') {
        return Err(err("must not start with '.'"));
    }
    Ok(())
}

/// The topics of one fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    fleet: String,
}

/// Where a desired document lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Device(String),
    Group(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Device(d) => write!(f, "device {d}"),
            Scope::Group(g) => write!(f, "group {g}"),
        }
    }
}

impl Topics {
    /// Topics of `fleet` (checked).
    pub fn new(fleet: &str) -> Result<Self, TopicError> {
        check_name("fleet", fleet)?;
        Ok(Self {
            fleet: fleet.to_owned(),
        })
    }

    pub fn fleet(&self) -> &str {
        &self.fleet
    }

    fn device(&self, device: &str, leaf: &str) -> String {
        format!("skerry/v1/{}/{device}/{leaf}", self.fleet)
    }

    /// `…/<device>/desired` or `…/groups/<group>/desired`.
    pub fn desired(&self, scope: &Scope) -> String {
        match scope {
            Scope::Device(d) => self.device(d, "desired"),
            Scope::Group(g) => format!("skerry/v1/{}/groups/{g}/desired", self.fleet),
        }
    }

    /// The operator's copy of the document a newer one replaced (for `ctl rollback`).
    pub fn previous(&self, scope: &Scope) -> String {
        format!("{}/previous", self.desired(scope))
    }

    pub fn reported(&self, device: &str) -> String {
        self.device(device, "reported")
    }

    pub fn events(&self, device: &str) -> String {
        self.device(device, "events")
    }

    /// Secrets sealed to `device` (not retained: the persistent session queues them).
    pub fn secrets(&self, device: &str) -> String {
        self.device(device, "secrets")
    }

    pub fn status(&self, device: &str) -> String {
        self.device(device, "status")
    }

    /// Telemetry figures of a device.
    pub fn metrics(&self, device: &str) -> String {
        self.device(device, "metrics")
    }

    /// Log batches of one container; `task` and `container` are checked names.
    pub fn logs(&self, device: &str, task: &str, container: &str) -> String {
        self.device(device, &format!("logs/{task}/{container}"))
    }

    /// Every container's log batches of one task (a wildcard).
    pub fn task_logs(&self, device: &str, task: &str) -> String {
        self.device(device, &format!("logs/{task}/+"))
    }

    /// All devices' reported states (a wildcard: mosquitto delivers retained messages
    /// to it; AWS IoT Core does not, see docs/fleet-brokers.md).
    pub fn all_reported(&self) -> String {
        format!("skerry/v1/{}/+/reported", self.fleet)
    }

    pub fn all_status(&self) -> String {
        format!("skerry/v1/{}/+/status", self.fleet)
    }

    /// The device a `…/<device>/<leaf>` topic of this fleet names.
    pub fn device_of<'a>(&self, topic: &'a str, leaf: &str) -> Option<&'a str> {
        let rest = topic.strip_prefix("skerry/v1/")?;
        let rest = rest.strip_prefix(self.fleet.as_str())?.strip_prefix('/')?;
        let (device, tail) = rest.split_once('/')?;
        (tail == leaf && check_name("device", device).is_ok()).then_some(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_names_are_checked() {
        for bad in ["", "a/b", "+", "#", "a b", ".hidden", &"x".repeat(65)] {
            assert!(check_name("device", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("device", "groups").is_err());
        assert!(check_name("group", "groups").is_ok());
        check_name("device", "gw-01.site_a").unwrap();
    }

    #[test]
    fn topics_layout() {
        let t = Topics::new("acme").unwrap();
        assert_eq!(
            t.desired(&Scope::Device("gw1".into())),
            "skerry/v1/acme/gw1/desired"
        );
        assert_eq!(
            t.previous(&Scope::Group("north".into())),
            "skerry/v1/acme/groups/north/desired/previous"
        );
        assert_eq!(
            t.device_of("skerry/v1/acme/gw1/reported", "reported"),
            Some("gw1")
        );
        assert_eq!(
            t.device_of("skerry/v1/other/gw1/reported", "reported"),
            None
        );
        assert_eq!(t.device_of("skerry/v1/acme/gw1/events", "reported"), None);
        assert_eq!(t.metrics("gw1"), "skerry/v1/acme/gw1/metrics");
        assert_eq!(
            t.logs("gw1", "web", "nginx"),
            "skerry/v1/acme/gw1/logs/web/nginx"
        );
        assert_eq!(t.task_logs("gw1", "web"), "skerry/v1/acme/gw1/logs/web/+");
    }
}
