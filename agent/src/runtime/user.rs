//! Resolves a task definition's `user` against the image's /etc/passwd and
//! /etc/group, as Docker does: names to ids, plus supplementary groups.

use std::fs;
use std::path::Path;

use skerry_core::spec::UserSpec;

use super::RuntimeError;

/// Numeric identity a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Largest passwd/group file read from an image (untrusted content).
const MAX_DB_BYTES: u64 = 1 << 20;

/// Resolves `user` (from the task definition, else the image's `User`) inside `rootfs`.
pub fn resolve_user(
    rootfs: &Path,
    task_user: Option<&UserSpec>,
    image_user: Option<&str>,
) -> Result<ResolvedUser, RuntimeError> {
    let spec = match (task_user, image_user) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) if !s.is_empty() => parse_user_string(s),
        _ => return Ok(ResolvedUser::default()),
    };
    let passwd = read_db(&rootfs.join("etc/passwd"))?;
    let group = read_db(&rootfs.join("etc/group"))?;
    let (uid, mut gid, name) = match &spec {
        UserSpec::Id { uid, gid } => {
            let entry = passwd.iter().find(|f| f.get(2) == Some(&uid.to_string()));
            let primary = entry.and_then(|f| f.get(3)).and_then(|g| g.parse().ok());
            (
                *uid,
                gid.or(primary).unwrap_or(0),
                entry.map(|f| f[0].clone()),
            )
        }
        UserSpec::Name { user, .. } => {
            let entry = passwd
                .iter()
                .find(|f| f.first() == Some(user))
                .ok_or_else(|| {
                    RuntimeError::User(format!(
                        "user \"{user}\" not found in the image's /etc/passwd"
                    ))
                })?;
            let uid = field_id(entry, 2, user)?;
            let gid = field_id(entry, 3, user)?;
            (uid, gid, Some(user.clone()))
        }
    };
    if let UserSpec::Name { group: Some(g), .. } = &spec {
        gid = match g.parse::<u32>() {
            Ok(id) => id,
            Err(_) => group
                .iter()
                .find(|f| f.first() == Some(g))
                .and_then(|f| f.get(2))
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| {
                    RuntimeError::User(format!("group \"{g}\" not found in the image's /etc/group"))
                })?,
        };
    }
    let mut additional_gids: Vec<u32> = match &name {
        Some(n) => group
            .iter()
            .filter(|f| {
                f.get(3)
                    .is_some_and(|members| members.split(',').any(|m| m == n))
            })
            .filter_map(|f| f.get(2).and_then(|id| id.parse().ok()))
            .collect(),
        None => Vec::new(),
    };
    additional_gids.retain(|g| *g != gid);
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

fn parse_user_string(s: &str) -> UserSpec {
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    match (user.parse::<u32>(), group.map(str::parse::<u32>)) {
        (Ok(uid), None) => UserSpec::Id { uid, gid: None },
        (Ok(uid), Some(Ok(gid))) => UserSpec::Id {
            uid,
            gid: Some(gid),
        },
        _ => UserSpec::Name {
            user: user.to_string(),
            group: group.map(str::to_string),
        },
    }
}

fn field_id(entry: &[String], index: usize, user: &str) -> Result<u32, RuntimeError> {
    entry
        .get(index)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| RuntimeError::User(format!("malformed /etc/passwd entry for \"{user}\"")))
}

fn read_db(path: &Path) -> Result<Vec<Vec<String>>, RuntimeError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(path, e)),
    };
    if !meta.is_file() || meta.len() > MAX_DB_BYTES {
        return Err(RuntimeError::User(format!(
            "{} is not a regular file under 1 MiB",
            path.display()
        )));
    }
    let text = fs::read_to_string(path).map_err(|e| RuntimeError::io(path, e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_test_rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("etc")).expect("etc");
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nvideo:x:44:app\n",
        )
        .expect("group");
        dir
    }

    #[test]
    fn user_name_resolves_with_supplementary_groups() {
        let root = generate_test_rootfs();
        let u = resolve_user(
            root.path(),
            Some(&UserSpec::Name {
                user: "app".into(),
                group: None,
            }),
            None,
        )
        .expect("resolve");
        assert_eq!(
            u,
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![44]
            }
        );
    }

    #[test]
    fn user_task_overrides_image_and_numeric_works_without_passwd_entry() {
        let root = generate_test_rootfs();
        let u = resolve_user(
            root.path(),
            Some(&UserSpec::Id {
                uid: 4242,
                gid: Some(7),
            }),
            Some("app"),
        )
        .expect("resolve");
        assert_eq!((u.uid, u.gid), (4242, 7));
        let u = resolve_user(root.path(), None, Some("app:video")).expect("resolve");
        assert_eq!((u.uid, u.gid), (1000, 44));
    }

    #[test]
    fn user_unknown_name_is_refused() {
        let root = generate_test_rootfs();
        let err = resolve_user(
            root.path(),
            Some(&UserSpec::Name {
                user: "nobody2".into(),
                group: None,
            }),
            None,
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("nobody2"), "{err}");
    }
}
