//! Task-level `cpu` and `memory` as ECS accepts them: a JSON number or a string,
//! either plain (`"256"`: CPU units / MiB) or with a unit (`"1 vCPU"`, `"0.5 vcpu"`,
//! `"1 GB"`, `"512 MiB"`). As in ECS, `GB` means GiB (`"1 GB"` is 1024 MiB).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Task `cpu`/`memory` as written; interpreted by [`cpu_units`] and [`memory_mib`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Quantity {
    Number(f64),
    Text(String),
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;

        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string such as \"256\", \"1 vCPU\" or \"1 GB\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::Number(v as f64))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::Number(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity::Number(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::Text(v.to_string()))
            }
        }

        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// Upper bound ECS puts on task `cpu` (192 vCPU).
const MAX_TASK_CPU_UNITS: f64 = 196_608.0;
/// Lower bound ECS puts on task `cpu` (0.125 vCPU).
const MIN_TASK_CPU_UNITS: f64 = 128.0;
/// Docker's floor for a memory limit; applies to the task as to each container.
pub(crate) const MIN_MEMORY_MIB: u64 = 6;

/// Splits `"0.5 vCPU"` into `(0.5, "vcpu")`; a bare number has an empty unit.
fn split_unit(text: &str) -> Option<(f64, String)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let value: f64 = number.parse().ok()?;
    Some((value, unit.trim().to_ascii_lowercase()))
}

/// Task `cpu` in CPU units (1024 per vCPU), checked against ECS's 128–196608 range.
pub(crate) fn cpu_units(quantity: &Quantity) -> Result<u32, String> {
    let units = match quantity {
        Quantity::Number(n) => *n,
        Quantity::Text(text) => match split_unit(text) {
            Some((n, unit)) if unit.is_empty() => n,
            Some((n, unit)) if unit == "vcpu" || unit == "vcpus" => n * 1024.0,
            _ => {
                return Err(format!(
                    "must be cpu units (\"256\") or vCPUs (\"0.25 vCPU\"), got {text:?}"
                ))
            }
        },
    };
    if units.fract() != 0.0 {
        return Err(format!("must be a whole number of cpu units, got {units}"));
    }
    if !(MIN_TASK_CPU_UNITS..=MAX_TASK_CPU_UNITS).contains(&units) {
        return Err(format!(
            "must be between 128 and 196608 cpu units (0.125 to 192 vCPU), got {units}"
        ));
    }
    Ok(units as u32)
}

/// Task `memory` in MiB; at least [`MIN_MEMORY_MIB`].
pub(crate) fn memory_mib(quantity: &Quantity) -> Result<u64, String> {
    let mib = match quantity {
        Quantity::Number(n) => *n,
        Quantity::Text(text) => match split_unit(text) {
            Some((n, unit)) if matches!(unit.as_str(), "" | "mib" | "mb" | "m") => n,
            Some((n, unit)) if matches!(unit.as_str(), "gib" | "gb" | "g") => n * 1024.0,
            _ => {
                return Err(format!(
                    "must be MiB (\"512\", \"512 MiB\") or GB (\"1 GB\"), got {text:?}"
                ))
            }
        },
    };
    if mib.fract() != 0.0 {
        return Err(format!("must be a whole number of MiB, got {mib}"));
    }
    if mib < MIN_MEMORY_MIB as f64 {
        return Err(format!("must be at least {MIN_MEMORY_MIB} MiB, got {mib}"));
    }
    if mib > u32::MAX as f64 {
        return Err(format!("is too large, got {mib} MiB"));
    }
    Ok(mib as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;

    fn text(s: &str) -> Quantity {
        Quantity::Text(s.to_string())
    }

    #[test]
    fn cpu_forms() {
        assert_eq!(cpu_units(&Quantity::Number(512.0)), Ok(512));
        assert_eq!(cpu_units(&text("256")), Ok(256));
        assert_eq!(cpu_units(&text("1 vCPU")), Ok(1024));
        assert_eq!(cpu_units(&text("0.5 vcpu")), Ok(512));
        assert_eq!(cpu_units(&text(".25 VCPU")), Ok(256));
        assert_eq!(cpu_units(&text("2vCPU")), Ok(2048));
    }

    #[test]
    fn cpu_refusals() {
        assert!(cpu_units(&text("lots")).unwrap_err().contains("\"lots\""));
        assert!(cpu_units(&text("1 GHz")).unwrap_err().contains("cpu units"));
        assert!(cpu_units(&Quantity::Number(64.0))
            .unwrap_err()
            .contains("got 64"));
        assert!(cpu_units(&text("0.0001 vCPU"))
            .unwrap_err()
            .contains("whole"));
        assert!(cpu_units(&text("200 vCPU")).unwrap_err().contains("196608"));
    }

    #[test]
    fn memory_forms() {
        assert_eq!(memory_mib(&Quantity::Number(512.0)), Ok(512));
        assert_eq!(memory_mib(&text("512")), Ok(512));
        assert_eq!(memory_mib(&text("1 GB")), Ok(1024));
        assert_eq!(memory_mib(&text("1GB")), Ok(1024));
        assert_eq!(memory_mib(&text("0.5 GiB")), Ok(512));
        assert_eq!(memory_mib(&text("512 MiB")), Ok(512));
        assert_eq!(memory_mib(&text("64mb")), Ok(64));
    }

    #[test]
    fn memory_refusals() {
        assert!(memory_mib(&text("1 TB")).unwrap_err().contains("\"1 TB\""));
        assert!(memory_mib(&text("1.5 MiB")).unwrap_err().contains("whole"));
        assert!(memory_mib(&Quantity::Number(4.0))
            .unwrap_err()
            .contains("at least 6 MiB"));
        assert!(memory_mib(&Quantity::Number(-4.0)).is_err());
        assert!(memory_mib(&text("")).is_err());
    }
}
