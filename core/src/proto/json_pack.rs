//! A compact, lossless binary form of JSON for deployment documents: the same value
//! tree, with object keys and common strings replaced by their index in one fixed
//! table of ECS words, numbers as varints, and no quotes, commas or whitespace. What
//! the table does not hold travels as a literal, so *any* JSON packs and unpacks to
//! an equal value: a field this skerry has never heard of still reaches the device's
//! `spec` under its own name and is refused by it, never misread.
//!
//! ```text
//! value  = 0 null | 1 true | 2 false | 3 uint(varint) | 4 negint(varint of -1-n)
//!        | 5 f64(8 bytes LE) | 6 str(len, utf-8) | 7 word(table index)
//!        | 8 array(len, value*) | 9 object(len, (key value)*)
//! key    = varint 0 then len, utf-8 | varint i+1 for TABLE[i]
//! ```
//!
//! [`TABLE`] is part of the document schema: entries are only ever appended (a test
//! pins its digest), so an older device reading a newer table's index it does not
//! have refuses the document by name instead of guessing.

use serde_json::{Map, Number, Value};

/// Why bytes are not a packed JSON value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("packed JSON ends early")]
    Truncated,
    #[error("packed JSON has unknown tag {0}")]
    Tag(u8),
    #[error("packed JSON names word {0}, beyond this skerry's table of {len}", len = TABLE.len())]
    Word(u64),
    #[error("packed JSON string is not UTF-8")]
    Utf8,
    #[error("packed JSON nests deeper than {MAX_DEPTH}")]
    Depth,
    #[error("packed JSON number is not finite")]
    NotFinite,
    #[error("packed JSON has {0} bytes after its value")]
    Trailing(usize),
}

/// Deepest nesting read back (ECS task definitions nest about 6 levels).
pub const MAX_DEPTH: usize = 64;

/// Packs `v`. Infallible: every JSON value has a packed form.
pub fn pack(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_value(&mut out, v);
    out
}

/// Reads what [`pack`] wrote; every byte must belong to the one value.
pub fn unpack(bytes: &[u8]) -> Result<Value, PackError> {
    let mut r = Reader { bytes, at: 0 };
    let v = r.value(0)?;
    match bytes.len() - r.at {
        0 => Ok(v),
        n => Err(PackError::Trailing(n)),
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_literal(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn word_of(s: &str) -> Option<usize> {
    TABLE.iter().position(|w| *w == s)
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Bool(true) => out.push(1),
        Value::Bool(false) => out.push(2),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(3);
                put_varint(out, u);
            } else if let Some(i) = n.as_i64() {
                out.push(4);
                // i < 0 here (non-negative ones are u64): -1-i fits without overflow.
                put_varint(out, (-1 - i) as u64);
            } else {
                out.push(5);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => match word_of(s) {
            Some(i) => {
                out.push(7);
                put_varint(out, i as u64);
            }
            None => {
                out.push(6);
                put_literal(out, s);
            }
        },
        Value::Array(items) => {
            out.push(8);
            put_varint(out, items.len() as u64);
            for i in items {
                put_value(out, i);
            }
        }
        Value::Object(map) => {
            out.push(9);
            put_varint(out, map.len() as u64);
            for (k, v) in map {
                match word_of(k) {
                    Some(i) => put_varint(out, i as u64 + 1),
                    None => {
                        out.push(0);
                        put_literal(out, k);
                    }
                }
                put_value(out, v);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, PackError> {
        let b = *self.bytes.get(self.at).ok_or(PackError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, PackError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(PackError::Truncated)
    }

    /// A count of items that each take at least one byte: never more than remain,
    /// so a forged length cannot make a huge allocation.
    fn count(&mut self) -> Result<usize, PackError> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(PackError::Truncated);
        }
        Ok(n as usize)
    }

    fn literal(&mut self) -> Result<String, PackError> {
        let len = self.count()?;
        let raw = &self.bytes[self.at..self.at + len];
        self.at += len;
        String::from_utf8(raw.to_vec()).map_err(|_| PackError::Utf8)
    }

    fn word(&mut self, index: u64) -> Result<String, PackError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| TABLE.get(i))
            .map(|w| (*w).to_owned())
            .ok_or(PackError::Word(index))
    }

    fn value(&mut self, depth: usize) -> Result<Value, PackError> {
        if depth > MAX_DEPTH {
            return Err(PackError::Depth);
        }
        Ok(match self.byte()? {
            0 => Value::Null,
            1 => Value::Bool(true),
            2 => Value::Bool(false),
            3 => Value::from(self.varint()?),
            4 => {
                let m = self.varint()?;
                let i = i64::try_from(m).map_err(|_| PackError::Truncated)?;
                Value::from(-1 - i)
            }
            5 => {
                let end = self.at + 8;
                let raw = self.bytes.get(self.at..end).ok_or(PackError::Truncated)?;
                self.at = end;
                let mut le = [0u8; 8];
                le.copy_from_slice(raw);
                let f = f64::from_le_bytes(le);
                Value::Number(Number::from_f64(f).ok_or(PackError::NotFinite)?)
            }
            6 => Value::String(self.literal()?),
            7 => {
                let i = self.varint()?;
                Value::String(self.word(i)?)
            }
            8 => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            9 => {
                let n = self.count()?;
                let mut map = Map::new();
                for _ in 0..n {
                    let key = match self.varint()? {
                        0 => self.literal()?,
                        i => self.word(i - 1)?,
                    };
                    let v = self.value(depth + 1)?;
                    map.insert(key, v);
                }
                Value::Object(map)
            }
            t => return Err(PackError::Tag(t)),
        })
    }
}

/// ECS field names (task definitions, containers, the desired directory's service
/// shape, log and volume options) and the values most definitions repeat.
/// **Append only**: an index, once published, means its word forever.
pub const TABLE: &[&str] = &[
    // Task definition.
    "taskDefinition",
    "tags",
    "family",
    "containerDefinitions",
    "networkMode",
    "pidMode",
    "ipcMode",
    "volumes",
    "cpu",
    "memory",
    "requiresCompatibilities",
    "runtimePlatform",
    "placementConstraints",
    "inferenceAccelerators",
    "proxyConfiguration",
    "ephemeralStorage",
    "enableFaultInjection",
    "taskRoleArn",
    "executionRoleArn",
    "revision",
    "taskDefinitionArn",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "operatingSystemFamily",
    "cpuArchitecture",
    // Volumes.
    "name",
    "host",
    "dockerVolumeConfiguration",
    "efsVolumeConfiguration",
    "fsxWindowsFileServerVolumeConfiguration",
    "configuredAtLaunch",
    "scope",
    "autoprovision",
    "driver",
    "driverOpts",
    "labels",
    "sourcePath",
    // Containers.
    "image",
    "command",
    "entryPoint",
    "environment",
    "workingDirectory",
    "user",
    "memoryReservation",
    "essential",
    "stopTimeout",
    "startTimeout",
    "readonlyRootFilesystem",
    "privileged",
    "linuxParameters",
    "mountPoints",
    "volumesFrom",
    "ulimits",
    "systemControls",
    "hostname",
    "extraHosts",
    "dnsServers",
    "dnsSearchDomains",
    "dockerLabels",
    "portMappings",
    "dependsOn",
    "healthCheck",
    "restartPolicy",
    "logConfiguration",
    "versionConsistency",
    "environmentFiles",
    "secrets",
    "links",
    "repositoryCredentials",
    "resourceRequirements",
    "firelensConfiguration",
    "disableNetworking",
    "interactive",
    "pseudoTerminal",
    "dockerSecurityOptions",
    "credentialSpecs",
    "value",
    "capabilities",
    "initProcessEnabled",
    "tmpfs",
    "sharedMemorySize",
    "devices",
    "maxSwap",
    "swappiness",
    "hostPath",
    "containerPath",
    "permissions",
    "add",
    "drop",
    "size",
    "mountOptions",
    "sourceVolume",
    "readOnly",
    "sourceContainer",
    "softLimit",
    "hardLimit",
    "namespace",
    "ipAddress",
    "containerPort",
    "hostPort",
    "protocol",
    "appProtocol",
    "containerPortRange",
    "containerName",
    "condition",
    "interval",
    "timeout",
    "retries",
    "startPeriod",
    "enabled",
    "ignoredExitCodes",
    "restartAttemptPeriod",
    "logDriver",
    "options",
    "secretOptions",
    "valueFrom",
    "credentialsParameter",
    "type",
    // Services (the desired directory's `<name>.service.json`).
    "desiredCount",
    "deploymentConfiguration",
    "minimumHealthyPercent",
    "maximumPercent",
    "stabilityWindowSeconds",
    "deploymentCircuitBreaker",
    "enable",
    "rollback",
    "failureThreshold",
    "deadlineSeconds",
    // Option keys.
    "awslogs-group",
    "awslogs-region",
    "awslogs-stream-prefix",
    "awslogs-create-group",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "mode",
    "max-buffer-size",
    "max-size",
    "max-file",
    "tag",
    "env",
    "device",
    "o",
    // Values.
    "EXTERNAL",
    "EC2",
    "FARGATE",
    "LINUX",
    "ARM64",
    "X86_64",
    "bridge",
    "none",
    "awsvpc",
    "task",
    "shared",
    "local",
    "tcp",
    "udp",
    "http",
    "awslogs",
    "json-file",
    "journald",
    "skerry",
    "CMD-SHELL",
    "CMD",
    "NONE",
    "sh",
    "-c",
    "START",
    "COMPLETE",
    "SUCCESS",
    "HEALTHY",
    "true",
    "false",
    "read",
    "write",
    "mknod",
    "nofile",
    "memlock",
    "busybox:latest",
    "non-blocking",
    "blocking",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) {
        assert_eq!(&unpack(&pack(v)).expect("unpack"), v, "{v}");
    }

    #[test]
    fn pack_round_trips_every_kind_of_value() {
        round_trip(&json!(null));
        round_trip(
            &json!({"family": "x", "unknownField": [1, -1, -9_007_199_254_740_993i64, 2.5, u64::MAX, i64::MIN, true, false, null, "tcp", "", "ü"]}),
        );
        round_trip(&json!([[[{"a": {"": {}}}]]]));
        round_trip(&json!({"awslogs-group": "g", "command": ["sh", "-c", "echo hi"]}));
    }

    #[test]
    fn pack_every_repo_example_and_corpus_definition_round_trips() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in [root.join("../examples"), root.join("tests/corpus")] {
            for e in std::fs::read_dir(&dir).expect("dir").flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&p).expect("read");
                    let v: Value = serde_json::from_str(&text).expect("json");
                    let packed = pack(&v);
                    assert!(packed.len() < text.len(), "{}", p.display());
                    round_trip(&v);
                    seen += 1;
                }
            }
        }
        assert!(seen > 30, "{seen}");
    }

    #[test]
    fn pack_table_words_are_unique_and_append_only() {
        let mut sorted: Vec<_> = TABLE.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), TABLE.len(), "a word is in TABLE twice");
        // FNV-1a over the table as published with document schema 2. Appending words
        // is allowed (update the pin's length and digest together); changing or
        // reordering one would make devices misread documents, so this must fail.
        let pinned = 184;
        let digest = TABLE[..pinned]
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
                w.bytes()
                    .chain([0])
                    .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
            });
        assert_eq!(
            digest, 6_850_647_885_296_813_441,
            "TABLE[..{pinned}] changed: append only"
        );
    }

    #[test]
    fn pack_garbage_is_refused_by_name_never_a_panic() {
        assert_eq!(unpack(b""), Err(PackError::Truncated));
        assert_eq!(unpack(&[42]), Err(PackError::Tag(42)));
        assert_eq!(unpack(&[7, 0xff, 0x7f]), Err(PackError::Word(16383)));
        assert_eq!(unpack(&[6, 2, 0xff, 0xfe]), Err(PackError::Utf8));
        assert_eq!(
            unpack(&[8, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(PackError::Truncated)
        );
        assert_eq!(unpack(&[0, 0]), Err(PackError::Trailing(1)));
        assert_eq!(
            unpack(&[5, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f]),
            Err(PackError::NotFinite)
        );
        let deep: Vec<u8> = std::iter::repeat_n([8u8, 1], MAX_DEPTH + 2)
            .flatten()
            .chain([0])
            .collect();
        assert_eq!(unpack(&deep), Err(PackError::Depth));
        // Every prefix of a real value is refused, none panics.
        let full = pack(
            &json!({"family": "x", "containerDefinitions": [{"name": "c", "memory": 32, "cpu": 1.5}]}),
        );
        for cut in 0..full.len() {
            assert!(unpack(&full[..cut]).is_err(), "prefix {cut}");
        }
    }
}
