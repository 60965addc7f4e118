//! Which image fits this machine: Rust's `std::env::consts::ARCH` mapped to OCI names
//! (x86_64→amd64, aarch64→arm64 variant v8, arm→arm variant v7), the variants each can
//! run, picking an entry from an image index, and checking a config's architecture.

use std::fmt;

use oci_spec::image::{Descriptor, ImageConfiguration, Os};

use super::error::ImageError;

/// An OCI platform (always linux).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// OCI architecture: `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// OCI variant: `v8` for arm64, `v7` for arm, none for amd64.
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform.
    pub fn host() -> Self {
        Self::from_rust_arch(std::env::consts::ARCH)
    }

    /// The OCI platform for a Rust `target_arch` name.
    pub fn from_rust_arch(arch: &str) -> Self {
        let (architecture, variant) = match arch {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "riscv64" => ("riscv64", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Self {
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `[linux/]arch[/variant]` (`linux/arm64/v8`, `arm/v7`, `amd64`); arm64 and
    /// arm without a variant mean v8 and v7.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let bad = |reason: &'static str| ImageError::InvalidPlatform {
            platform: s.to_owned(),
            reason,
        };
        let parts: Vec<&str> = s.split('/').collect();
        let parts = match parts.as_slice() {
            ["linux", rest @ ..] => rest.to_vec(),
            [os, _, ..] if !matches!(*os, "amd64" | "arm64" | "arm") => {
                return Err(bad("only linux images run here"))
            }
            all => all.to_vec(),
        };
        let (arch, variant) = match parts.as_slice() {
            [arch] => (*arch, None),
            [arch, variant] => (*arch, Some(*variant)),
            _ => return Err(bad("use os/arch[/variant], e.g. linux/arm64/v8")),
        };
        let ok = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        if !ok(arch) || !variant.is_none_or(ok) {
            return Err(bad(
                "architecture and variant are lowercase letters and digits",
            ));
        }
        let variant = variant.or(match arch {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        });
        Ok(Self {
            architecture: arch.to_owned(),
            variant: variant.map(str::to_owned),
        })
    }

    /// Variants this machine runs, best first (`None` = an image that names no variant).
    fn compatible_variants(&self) -> Vec<Option<&'static str>> {
        match self.architecture.as_str() {
            "arm64" => vec![Some("v8"), None],
            "arm" => vec![Some("v7"), None, Some("v6"), Some("v5")],
            "amd64" => vec![None, Some("v1")],
            _ => vec![None],
        }
    }

    /// Rank of (`architecture`, `variant`) for this machine, lower is better; `None` if
    /// it cannot run here.
    fn rank(&self, architecture: &str, variant: Option<&str>) -> Option<usize> {
        if architecture != self.architecture {
            return None;
        }
        self.compatible_variants()
            .iter()
            .position(|v| *v == variant)
    }

    /// Picks the best entry of an image index for this machine (linux only).
    pub(crate) fn select<'a>(&self, entries: &'a [Descriptor]) -> Option<&'a Descriptor> {
        entries
            .iter()
            .filter_map(|d| {
                let p = d.platform().as_ref()?;
                if *p.os() != Os::Linux {
                    return None;
                }
                let rank = self.rank(&p.architecture().to_string(), p.variant().as_deref())?;
                Some((rank, d))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }

    /// Refuses a config built for another OS or architecture.
    pub(crate) fn check_config(
        &self,
        reference: &str,
        config: &ImageConfiguration,
    ) -> Result<(), ImageError> {
        let image = Self {
            architecture: config.architecture().to_string(),
            variant: config.variant().clone(),
        };
        let os_ok = *config.os() == Os::Linux;
        match self.rank(&image.architecture, image.variant.as_deref()) {
            Some(_) if os_ok => Ok(()),
            _ => Err(ImageError::WrongPlatform {
                reference: reference.to_owned(),
                image: if os_ok {
                    image.to_string()
                } else {
                    format!("{}/{image}", config.os())
                },
                host: self.to_string(),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(v) if self.architecture != "arm64" => write!(f, "{}/{v}", self.architecture),
            _ => f.write_str(&self.architecture),
        }
    }
}

/// "linux/amd64, linux/arm64/v8": what an index offers, for error messages.
pub(crate) fn describe_entries(entries: &[Descriptor]) -> String {
    let names: Vec<String> = entries
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| match p.variant() {
            Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
            None => format!("{}/{}", p.os(), p.architecture()),
        })
        .collect();
    if names.is_empty() {
        "no platforms".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::image::{Arch, DescriptorBuilder, MediaType, PlatformBuilder};

    use super::*;

    fn entry(arch: Arch, variant: Option<&str>, n: char) -> Descriptor {
        let mut p = PlatformBuilder::default().architecture(arch).os(Os::Linux);
        if let Some(v) = variant {
            p = p.variant(v);
        }
        DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(
                format!("sha256:{}", n.to_string().repeat(64))
                    .parse::<oci_spec::image::Digest>()
                    .expect("digest"),
            )
            .size(1u64)
            .platform(p.build().expect("platform"))
            .build()
            .expect("descriptor")
    }

    #[test]
    fn platform_maps_rust_arches() {
        assert_eq!(Platform::from_rust_arch("x86_64").to_string(), "amd64");
        assert_eq!(
            Platform::from_rust_arch("aarch64").variant.as_deref(),
            Some("v8")
        );
        assert_eq!(Platform::from_rust_arch("arm").to_string(), "arm/v7");
    }

    #[test]
    fn platform_select_prefers_exact_variant() {
        let entries = [
            entry(Arch::Amd64, None, 'a'),
            entry(Arch::ARM64, None, 'b'),
            entry(Arch::ARM64, Some("v8"), 'c'),
            entry(Arch::ARM, Some("v6"), 'd'),
            entry(Arch::ARM, Some("v7"), 'e'),
        ];
        let pick = |rust: &str| {
            Platform::from_rust_arch(rust)
                .select(&entries)
                .map(|d| d.digest().to_string())
        };
        assert!(pick("x86_64").expect("amd64").ends_with('a'));
        assert!(pick("aarch64").expect("arm64").ends_with('c'));
        assert!(pick("arm").expect("arm").ends_with('e'));
        assert!(pick("riscv64").is_none());
        assert_eq!(
            Platform::parse("linux/arm64").expect("arm64"),
            Platform::from_rust_arch("aarch64")
        );
        assert_eq!(
            Platform::parse("amd64").expect("amd64"),
            Platform::from_rust_arch("x86_64")
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").expect("arm").to_string(),
            "arm/v7"
        );
        for bad in ["windows/amd64", "linux/", "linux/a/b/c", "linux/ARM64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        assert!(describe_entries(&entries).contains("linux/arm64/v8"));
    }
}
