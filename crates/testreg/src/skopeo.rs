//! Fixtures into and out of a [`Registry`] with `skopeo copy`.

use crate::fixtures::REF_NAME;
use crate::registry::{Auth, Registry};
use crate::util::run;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Which side of `skopeo copy` a registry is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Src,
    Dest,
}

/// skopeo flags to reach `reg`: credentials, and `--*-cert-dir` (TLS) or `--*-tls-verify=false` (HTTP).
pub fn skopeo_args(reg: &Registry, side: Side) -> Vec<String> {
    let p = if side == Side::Src { "src" } else { "dest" };
    let mut args = Vec::new();
    if reg.is_tls() {
        args.push(format!("--{p}-cert-dir={}", reg.cert_dir().display()));
    } else {
        args.push(format!("--{p}-tls-verify=false"));
    }
    if !matches!(reg.auth(), Auth::None) {
        let (u, pw) = reg.creds().expect("creds");
        args.push(format!("--{p}-creds={u}:{pw}"));
    }
    args
}

/// skopeo's name for a local source: an OCI layout dir (`oci:DIR[:TAG]`), or an archive file
/// (`oci-archive:` when it holds an `oci-layout`, else `docker-archive:`).
fn local_ref(src: &Path, tag: Option<&str>) -> (String, bool) {
    let tag = tag.map_or(String::new(), |t| format!(":{t}"));
    if src.is_dir() {
        return (format!("oci:{}{tag}", src.display()), true);
    }
    let f = std::fs::File::open(src).unwrap_or_else(|e| panic!("open {}: {e}", src.display()));
    let oci = tar::Archive::new(f)
        .entries()
        .expect("read archive")
        .filter_map(Result::ok)
        .any(|e| e.path().is_ok_and(|p| p.as_ref() == Path::new("oci-layout")));
    if oci {
        (format!("oci-archive:{}{tag}", src.display()), true)
    } else {
        (format!("docker-archive:{}", src.display()), false)
    }
}

/// Push an OCI layout dir (its image tagged like `dest`'s tag, else its only image: use
/// [`push_ref`] with `oci:DIR:TAG` to pick another), an
/// oci-archive or a docker-archive to `reg` as `dest` ("repo:tag") with `skopeo copy --all`
/// (OCI sources keep their digests). Returns the manifest digest in the registry.
pub fn push_image(reg: &Registry, src: &Path, dest: &str) -> String {
    push_image_with(reg, src, dest, &[])
}

/// [`push_image`] with more skopeo flags (e.g. `--format v2s2`, which changes digests).
pub fn push_image_with(reg: &Registry, src: &Path, dest: &str, extra: &[&str]) -> String {
    let tag = dest.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/'));
    let has_tag = src.is_dir() && tag.is_some_and(|t| layout_has_tag(src, t));
    let (src_ref, oci) = local_ref(src, if has_tag { tag } else { None });
    let mut extra = extra.to_vec();
    if oci && !extra.iter().any(|a| a.starts_with("--format") || a.starts_with("-f")) {
        extra.push("--preserve-digests");
    }
    push_ref(reg, &src_ref, dest, &extra)
}

/// `skopeo copy --all [extra] SRC_REF docker://HOST/DEST` for any skopeo source reference
/// (e.g. `oci:DIR:TAG`); returns the manifest digest in the registry.
pub fn push_ref(reg: &Registry, src_ref: &str, dest: &str, extra: &[&str]) -> String {
    let digest_file = tempfile::NamedTempFile::new().expect("digest file");
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "-q", "--all", "--retry-times=0"])
        .args(skopeo_args(reg, Side::Dest))
        .args(extra);
    cmd.arg("--digestfile")
        .arg(digest_file.path())
        .arg(src_ref)
        .arg(format!("docker://{}/{dest}", reg.host()));
    run(&mut cmd);
    std::fs::read_to_string(digest_file.path()).expect("read digestfile").trim().to_string()
}

/// Copy `reference` ("repo:tag" or "repo@sha256:..") from `reg` into the OCI layout `dir` as
/// `tag`, with `skopeo copy --all`.
pub fn pull_with_skopeo(reg: &Registry, reference: &str, dir: &Path, tag: &str) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "-q", "--all", "--retry-times=0"]).args(skopeo_args(reg, Side::Src));
    cmd.arg(format!("docker://{}/{reference}", reg.host()))
        .arg(format!("oci:{}:{tag}", dir.display()));
    run(&mut cmd);
}

fn layout_has_tag(dir: &Path, tag: &str) -> bool {
    let index: Value = std::fs::read(dir.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    index["manifests"]
        .as_array()
        .is_some_and(|l| l.iter().any(|m| m["annotations"][REF_NAME] == tag))
}
