//! How imported images are named. NAME is the `name` argument of
//! [`import_as`](crate::images::ImageStore::import_as), else the file name lowercased
//! without `.tar`, `.tar.gz`, `.tgz` or `.oci` (`busybox-amd64.tar` → `busybox-amd64`).
//! For each `index.json` entry, a `ref.name` annotation that is a bare tag (`latest`)
//! gives `NAME:tag`; a full reference there is kept (only its tag when a name was
//! given); no annotation gives `NAME@<digest>`. A `name` with a tag or digest names the
//! one image of a single-image layout.

use std::path::Path;

use oci_spec::image::Descriptor;

use super::error::ImageError;
use super::reference::{is_valid_tag, Reference};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The repository (or full reference) images are named under.
pub(crate) fn base_name(path: &Path, name: Option<&str>) -> Result<Reference, ImageError> {
    if let Some(name) = name {
        return Reference::parse(name);
    }
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let stem = [".tar.gz", ".tgz", ".tar", ".oci"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(&file);
    Reference::parse(stem).map_err(|_| ImageError::InvalidReference {
        reference: stem.to_owned(),
        reason: "the file name is not a repository name: import with an explicit name",
    })
}

/// The reference one `index.json` entry is tagged under (see the module doc).
pub(crate) fn entry_reference(
    base: &Reference,
    entry: &Descriptor,
    named: bool,
) -> Result<String, ImageError> {
    if !base.is_bare_name() {
        return Ok(base.normalized());
    }
    let annotations = entry.annotations().as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    if let (Some(full), false) = (get(CONTAINERD_NAME), named) {
        return Reference::parse(full).map(|r| r.normalized());
    }
    match get(REF_NAME) {
        Some(tag) if is_valid_tag(tag) => Ok(format!("{}:{tag}", base.name)),
        // A full reference keeps its name, unless the caller chose one.
        Some(full) => match Reference::parse(full)? {
            Reference { tag: Some(tag), .. } if named => Ok(format!("{}:{tag}", base.name)),
            _ if named => Ok(format!("{}@{}", base.name, entry.digest())),
            r => Ok(r.normalized()),
        },
        None => Ok(format!("{}@{}", base.name, entry.digest())),
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::image::{DescriptorBuilder, MediaType};

    use super::*;

    fn entry(annotation: Option<(&str, &str)>) -> Descriptor {
        let mut d = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(
                format!("sha256:{}", "a".repeat(64))
                    .parse::<oci_spec::image::Digest>()
                    .expect("digest"),
            )
            .size(1u64);
        if let Some((k, v)) = annotation {
            d = d.annotations(
                [(k.to_owned(), v.to_owned())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
        }
        d.build().expect("descriptor")
    }

    #[test]
    fn naming_from_file_name_and_annotations() {
        let base = base_name(Path::new("/x/BusyBox-amd64.tar.gz"), None).expect("base");
        assert_eq!(base.name, "busybox-amd64");
        let tag = entry(Some((REF_NAME, "1.36")));
        assert_eq!(
            entry_reference(&base, &tag, false).expect("tag"),
            "busybox-amd64:1.36"
        );
        let full = entry(Some((REF_NAME, "docker.io/library/busybox:1.36")));
        assert_eq!(
            entry_reference(&base, &full, false).expect("full"),
            "docker.io/library/busybox:1.36"
        );
        let named = base_name(Path::new("x.tar"), Some("bb")).expect("named");
        assert_eq!(
            entry_reference(&named, &full, true).expect("named full"),
            "bb:1.36"
        );
        let bare = entry(None);
        assert_eq!(
            entry_reference(&named, &bare, true).expect("digest"),
            format!("bb@sha256:{}", "a".repeat(64))
        );
        assert!(base_name(Path::new("/x/not valid!.tar"), None).is_err());
        let pinned = base_name(Path::new("x"), Some("bb:v2")).expect("pinned");
        assert_eq!(
            entry_reference(&pinned, &tag, true).expect("pinned"),
            "bb:v2"
        );
    }
}
