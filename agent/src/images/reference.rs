//! Image references: `[host[:port]/]path[:tag][@sha256:hex]`, checked with the grammar of
//! the distribution spec (lowercase path components, tags of at most 128 characters).
//! References are store keys, never paths; nothing here touches the filesystem.
//!
//! Normal form: a missing tag becomes `:latest`; a digest is kept (`name@sha256:..`) and
//! then wins over any tag, which is dropped. No `docker.io/library/` prefix is added:
//! the store is local, and `busybox` stays `busybox:latest`.

use super::digest::Digest;
use super::error::ImageError;

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, checked reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) name: String,
    pub(crate) tag: Option<String>,
    pub(crate) digest: Option<Digest>,
}

impl Reference {
    /// Parses and checks `r`.
    pub(crate) fn parse(r: &str) -> Result<Self, ImageError> {
        let bad = |reason| ImageError::InvalidReference {
            reference: r.to_owned(),
            reason,
        };
        if r.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match r.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(
                    Digest::parse(d)
                        .map_err(|_| bad("digest must be sha256:<64 lowercase hex>"))?,
                ),
            ),
            None => (r, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            if !is_valid_tag(tag) {
                return Err(bad(
                    "tag must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
                ));
            }
        }
        check_name(name).map_err(bad)?;
        Ok(Self {
            name: name.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The normal form (see the module doc).
    pub(crate) fn normalized(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.name),
            (None, Some(t)) => format!("{}:{t}", self.name),
            (None, None) => format!("{}:latest", self.name),
        }
    }

    /// True if `r` had neither tag nor digest (only a repository name).
    pub(crate) fn is_bare_name(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }
}

/// `busybox` → `busybox:latest`; keeps `name@sha256:..`; refuses anything that is not a
/// reference, naming it in the error.
pub fn normalize_reference(r: &str) -> Result<String, ImageError> {
    Reference::parse(r).map(|p| p.normalized())
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn is_valid_tag(t: &str) -> bool {
    let mut bytes = t.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && t.len() <= MAX_TAG_LEN
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("missing repository name");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("repository name longer than 255 characters");
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    if components.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        check_domain(first)?;
        components.remove(0);
    }
    components.into_iter().try_for_each(check_path_component)
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    let (host, port) = match domain.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !host.split('.').all(label_ok) {
        return Err("invalid registry host");
    }
    match port {
        Some(p) if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) => {
            Err("invalid registry port")
        }
        _ => Ok(()),
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn check_path_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("empty path component");
    }
    if c.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err("path components start and end with [a-z0-9]");
    }
    let mut sep = String::new();
    for &b in bytes {
        if alnum(b) {
            if !(sep.is_empty()
                || sep == "."
                || sep == "_"
                || sep == "__"
                || sep.bytes().all(|s| s == b'-'))
            {
                return Err("separators are '.', '_', '__' or dashes");
            }
            sep.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            sep.push(char::from(b));
        } else {
            return Err("path components use only [a-z0-9._-]");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_normalizes_tags_and_digests() {
        let d = format!("sha256:{}", "0".repeat(64));
        for (input, want) in [
            ("busybox", "busybox:latest".to_owned()),
            ("busybox:1.36", "busybox:1.36".to_owned()),
            (
                "localhost:5000/team/app",
                "localhost:5000/team/app:latest".to_owned(),
            ),
            (
                "registry.example.com/a_b/c-d:v1.0",
                "registry.example.com/a_b/c-d:v1.0".to_owned(),
            ),
            (&format!("busybox@{d}"), format!("busybox@{d}")),
            (&format!("busybox:1@{d}"), format!("busybox@{d}")),
        ] {
            assert_eq!(normalize_reference(input).expect(input), want);
        }
    }

    #[test]
    fn reference_rejects_garbage_naming_it() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "/busybox",
            "busybox/",
            "bus//box",
            "../etc",
            "busy box",
            "busybox@sha256:abc",
            "busybox@md5:0",
            "a..b",
            "a:b:c",
        ] {
            let err = normalize_reference(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let long_tag = format!("busybox:{}", "t".repeat(129));
        assert!(normalize_reference(&long_tag).is_err());
    }
}
