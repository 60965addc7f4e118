//! `[mqtt]` of the agent config: the broker link. Parsing and range checks only; the
//! files it names are read when the link starts (a missing file is an error there,
//! naming it).
//!
//! ```text
//! [mqtt]
//! broker = "mqtts://broker.example:8883"   # TLS only; the client certificate is required
//! ca = "/etc/skerry/ca.pem"                # CA of the broker's certificate
//! cert = "/etc/skerry/device.pem"          # this device's certificate (its CN is the device id)
//! key = "/etc/skerry/device.key"
//! fleet = "acme"
//! device_id = "gw-01"                      # optional: default the certificate's CN
//! groups = ["north", "cellular"]           # order matters: the first group wins a name clash
//! trusted_keys = ["<64 hex digits>"]       # ed25519 keys allowed to sign deployments
//! max_payload = 131072                     # one size cap for every message (1024..=268435455)
//! keepalive_secs = 30                      # 5..=3600
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use skerry_core::proto::topics::check_name;

/// `[mqtt]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub broker: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub fleet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub trusted_keys: Vec<String>,
    #[serde(default = "default_max_payload")]
    pub max_payload: usize,
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u64,
}

fn default_max_payload() -> usize {
    skerry_core::proto::MAX_PAYLOAD
}

fn default_keepalive() -> u64 {
    30
}

/// A broker address: `mqtts://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mqtts://{}:{}", self.host, self.port)
    }
}

/// Parses `mqtts://host[:port]` (port 8883 by default). Plain `mqtt://` is refused:
/// desired state and reports never cross a network in clear.
pub fn parse_broker(url: &str) -> Result<BrokerAddr, String> {
    let rest = url.strip_prefix("mqtts://").ok_or_else(|| {
        format!("{url:?}: must start with mqtts:// (TLS with a client certificate is required)")
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("{url:?}: port {p:?} is not a number from 1 to 65535"))?;
            (h, port)
        }
        _ => (rest, 8883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') || port == 0 {
        return Err(format!("{url:?}: expected mqtts://host:port"));
    }
    Ok(BrokerAddr {
        host: host.to_owned(),
        port,
    })
}

/// Parses an ed25519 public key given as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("{text:?}: not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "{text:?}: an ed25519 public key is 32 bytes, got {}",
            b.len()
        )
    })
}

impl MqttConfig {
    /// Checks every value; returns `(key, reason)` for the first bad one.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        parse_broker(&self.broker).map_err(|e| ("mqtt.broker", e))?;
        for (key, p) in [
            ("mqtt.ca", &self.ca),
            ("mqtt.cert", &self.cert),
            ("mqtt.key", &self.key),
        ] {
            if !p.is_absolute() {
                return Err((
                    key,
                    format!(
                        "must be an absolute path, got {:?}",
                        p.display().to_string()
                    ),
                ));
            }
        }
        check_name("fleet", &self.fleet).map_err(|e| ("mqtt.fleet", e.to_string()))?;
        if let Some(d) = &self.device_id {
            check_name("device", d).map_err(|e| ("mqtt.device_id", e.to_string()))?;
        }
        for (i, g) in self.groups.iter().enumerate() {
            check_name("group", g).map_err(|e| ("mqtt.groups", e.to_string()))?;
            if self.groups[..i].contains(g) {
                return Err(("mqtt.groups", format!("group {g:?} is listed twice")));
            }
        }
        if self.groups.len() > 8 {
            return Err((
                "mqtt.groups",
                format!("at most 8 groups, got {}", self.groups.len()),
            ));
        }
        if self.trusted_keys.is_empty() {
            return Err((
                "mqtt.trusted_keys",
                "at least one ed25519 public key is needed (skerry ctl keygen prints one)".into(),
            ));
        }
        for k in &self.trusted_keys {
            parse_public_key(k).map_err(|e| ("mqtt.trusted_keys", e))?;
        }
        if !(1024..=268_435_455).contains(&self.max_payload) {
            return Err((
                "mqtt.max_payload",
                format!(
                    "must be between 1024 and 268435455, got {}",
                    self.max_payload
                ),
            ));
        }
        if !(5..=3600).contains(&self.keepalive_secs) {
            return Err((
                "mqtt.keepalive_secs",
                format!("must be between 5 and 3600, got {}", self.keepalive_secs),
            ));
        }
        Ok(())
    }

    /// The trusted keys, parsed (validated before).
    pub fn trusted(&self) -> Vec<[u8; 32]> {
        self.trusted_keys
            .iter()
            .filter_map(|k| parse_public_key(k).ok())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_broker_urls() {
        assert_eq!(
            parse_broker("mqtts://127.0.0.1:1883").unwrap(),
            BrokerAddr {
                host: "127.0.0.1".into(),
                port: 1883
            }
        );
        assert_eq!(parse_broker("mqtts://b.example").unwrap().port, 8883);
        assert_eq!(parse_broker("mqtts://[::1]:99").unwrap().host, "::1");
        for bad in [
            "mqtt://x:1",
            "x:1",
            "mqtts://:1",
            "mqtts://h:0",
            "mqtts://h:x",
        ] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mqtt_keys() {
        assert!(parse_public_key(&"ab".repeat(32)).is_ok());
        assert!(parse_public_key("abcd").unwrap_err().contains("32 bytes"));
        assert!(parse_public_key("zz").is_err());
    }
}
