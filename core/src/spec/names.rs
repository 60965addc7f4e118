//! Checks on single strings: names (family, container, volume), image references,
//! `user`, host names, paths and IP addresses. Each returns the reason on failure.

use std::net::IpAddr;

use super::model::UserSpec;

/// The ECS rule for `family` and container names: 1–255 ASCII letters, digits, `-`
/// and `_`. `kind` names the thing in the message (`family`, `container name`, …).
pub fn validate_name(kind: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{kind} must not be empty"));
    }
    if s.len() > 255 {
        return Err(format!(
            "{kind} must be at most 255 characters, got {}",
            s.len()
        ));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{kind} {s:?} may only contain letters, digits, '-' and '_', found {bad:?}"
        ));
    }
    Ok(())
}

/// An image reference: `[registry[:port]/]path[:tag][@algorithm:hex]`, with the
/// path in lower case as Docker requires.
pub(crate) fn check_image(image: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{image:?} is not a valid image reference: {why}"));
    if image.is_empty() {
        return Err("must not be empty".to_string());
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace");
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let ok = digest.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return bad("the digest must look like sha256:<hex>");
        }
    }
    // A tag is the part after the last ':' unless that ':' belongs to a registry port.
    let (repo, tag) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    };
    if let Some(tag) = tag {
        let ok = tag.len() <= 128
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return bad("the tag may hold letters, digits, '_', '.' and '-' (at most 128)");
        }
    }
    let mut components: Vec<&str> = repo.split('/').collect();
    let first = components.first().copied().unwrap_or_default();
    if components.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        components.remove(0); // the registry host: may hold upper case and a port
    }
    for component in components {
        let ok = !component.is_empty()
            && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !ok {
            return bad("repository names are lower-case letters, digits and '.', '_', '-'");
        }
    }
    Ok(())
}

/// `user`: `uid`, `uid:gid`, `name`, `name:group` or `name:gid`.
pub(crate) fn parse_user(s: &str) -> Result<UserSpec, String> {
    let (user, group) = match s.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (s, None),
    };
    let valid = |part: &str| {
        !part.is_empty()
            && !part.starts_with('-')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
    };
    if !valid(user) || group.is_some_and(|g| !valid(g)) {
        return Err(format!(
            "must be uid, uid:gid, user or user:group (letters, digits, '_', '-', '.'), got {s:?}"
        ));
    }
    let numeric = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if numeric(user) {
        let uid = user
            .parse::<u32>()
            .map_err(|_| format!("uid {user} is out of range"))?;
        let gid = match group {
            None => None,
            Some(g) if numeric(g) => Some(
                g.parse::<u32>()
                    .map_err(|_| format!("gid {g} is out of range"))?,
            ),
            Some(g) => {
                return Err(format!(
                    "a numeric uid needs a numeric gid, got group {g:?}: use uid:gid or user:group"
                ))
            }
        };
        return Ok(UserSpec::Id { uid, gid });
    }
    Ok(UserSpec::Name {
        user: user.to_string(),
        group: group.map(str::to_string),
    })
}

/// An absolute path without `..` components or NUL bytes.
pub(crate) fn check_absolute(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("must be an absolute path, got {path:?}"));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(format!("must not contain '..', got {path:?}"));
    }
    if path.contains('\0') {
        return Err("must not contain a NUL byte".to_string());
    }
    Ok(())
}

/// An absolute path inside a container where something may be mounted (not `/`).
pub(crate) fn check_mount_target(path: &str) -> Result<(), String> {
    check_absolute(path)?;
    if path.trim_end_matches('/').is_empty() {
        return Err("cannot mount over the root filesystem \"/\"".to_string());
    }
    Ok(())
}

/// A DNS host name (RFC 1123): dot-separated labels of letters, digits and `-`.
pub(crate) fn check_hostname(name: &str) -> Result<(), String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{name:?} is not a valid host name"));
    }
    Ok(())
}

/// An IPv4 or IPv6 address.
pub(crate) fn check_ip(ip: &str) -> Result<(), String> {
    ip.parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("{ip:?} is not an IP address"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("family", "hello-world_2").is_ok());
        assert!(validate_name("family", "")
            .unwrap_err()
            .contains("must not be empty"));
        let err = validate_name("container name", "web app").unwrap_err();
        assert!(err.contains("container name \"web app\""), "{err}");
        assert!(validate_name("family", &"a".repeat(256))
            .unwrap_err()
            .contains("255"));
    }

    #[test]
    fn images() {
        for ok in [
            "busybox",
            "busybox:latest",
            "library/busybox:1.36.1",
            "public.ecr.aws/docker/library/nginx:1.27-alpine",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1",
            "localhost:5000/app",
            "Registry.Example.com:443/team/app:v2",
            "alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image(ok), Ok(()), "{ok}");
        }
        assert!(check_image("Busybox").unwrap_err().contains("lower-case"));
        assert!(check_image("busybox latest")
            .unwrap_err()
            .contains("whitespace"));
        assert!(check_image("busybox:la$t").unwrap_err().contains("tag"));
        assert!(check_image("alpine@sha256:xyz")
            .unwrap_err()
            .contains("digest"));
        assert!(check_image("").is_err());
    }

    #[test]
    fn users() {
        assert_eq!(
            parse_user("1000"),
            Ok(UserSpec::Id {
                uid: 1000,
                gid: None
            })
        );
        assert_eq!(
            parse_user("1000:100"),
            Ok(UserSpec::Id {
                uid: 1000,
                gid: Some(100)
            })
        );
        assert_eq!(
            parse_user("nobody"),
            Ok(UserSpec::Name {
                user: "nobody".into(),
                group: None
            })
        );
        assert_eq!(
            parse_user("app:staff"),
            Ok(UserSpec::Name {
                user: "app".into(),
                group: Some("staff".into())
            })
        );
        assert_eq!(
            parse_user("app:100"),
            Ok(UserSpec::Name {
                user: "app".into(),
                group: Some("100".into())
            })
        );
        assert!(parse_user("1000:staff")
            .unwrap_err()
            .contains("numeric gid"));
        assert!(parse_user("99999999999")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_user("").is_err());
        assert!(parse_user("a:b:c").is_err());
        assert!(parse_user("app:").is_err());
    }

    #[test]
    fn paths_hosts_ips() {
        assert!(check_absolute("/data").is_ok());
        assert!(check_absolute("data").unwrap_err().contains("absolute"));
        assert!(check_absolute("/data/../etc").unwrap_err().contains(".."));
        assert!(check_mount_target("/").unwrap_err().contains("root"));
        assert!(check_hostname("gw-01.local").is_ok());
        assert!(check_hostname("-bad").is_err());
        assert!(check_hostname("under_score").is_err());
        assert!(check_ip("10.0.0.1").is_ok());
        assert!(check_ip("fd00::1").is_ok());
        assert!(check_ip("10.0.0.256").unwrap_err().contains("not an IP"));
    }
}
