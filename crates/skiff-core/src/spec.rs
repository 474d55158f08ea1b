//! Loading and checking a bundle's `config.json`.
//!
//! Errors name the JSON path of the offending field (`process.args[0]: ...`), so a broken config
//! is easy to fix. Validation here is the part that needs no kernel: everything that can be
//! refused before a process is forked is refused here.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// Spec versions we implement: 1.0.x through 1.3.x.
pub const SUPPORTED_VERSIONS: &str = "1.0.0 - 1.3.x";
/// The spec version we report (`state`, `--version`, `spec`).
pub const OCI_VERSION: &str = "1.2.0";

/// A validated bundle: its spec and the absolute rootfs path.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Reads `<dir>/config.json`, checks it, and resolves the rootfs.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = fs::canonicalize(dir).map_err(|e| Error::io("bundle", dir, e))?;
        let path = dir.join("config.json");
        let text = fs::read(&path).map_err(|e| Error::io("read config", &path, e))?;
        let spec = parse(&text).map_err(|msg| Error::Config { path: path.clone(), msg })?;
        let rootfs = resolve_rootfs(&dir, &spec)?;
        validate(&spec)?;
        Ok(Bundle { dir, spec, rootfs })
    }

    /// A bundle whose config the caller holds in memory (an engine calling us in-process):
    /// the same checks as [`Bundle::load`], without writing and parsing `config.json`.
    pub fn from_spec(dir: &Path, spec: Spec) -> Result<Bundle> {
        let dir = fs::canonicalize(dir).map_err(|e| Error::io("bundle", dir, e))?;
        check_version(spec.version()).map_err(|msg| Error::Config { path: dir.join("config.json"), msg: format!("ociVersion: {msg}") })?;
        let rootfs = resolve_rootfs(&dir, &spec)?;
        validate(&spec)?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Parses config text; the error string starts with the JSON path of the bad field.
pub fn parse(text: &[u8]) -> std::result::Result<Spec, String> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))?;
    parse_value(value)
}

/// As [`parse`], from a JSON value.
pub fn parse_value(mut value: serde_json::Value) -> std::result::Result<Spec, String> {
    // runc accepts a process without `user` (uid 0, gid 0); oci-spec requires it.
    if let Some(p) = value.get_mut("process").and_then(|p| p.as_object_mut()) {
        p.entry("user").or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    if let Some(p) = value.get_mut("process") {
        drop_unknown_capabilities(p);
    }
    let spec: Spec = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            format!("invalid JSON: {inner}")
        } else if let Some(name) = unknown_capability(&path, &inner.to_string()) {
            format!("{path}: unknown capability {name}")
        } else {
            format!("{path}: {inner}")
        }
    })?;
    check_version(spec.version()).map_err(|m| format!("ociVersion: {m}"))?;
    Ok(spec)
}

/// Removes the capability names we do not know from a process object's five sets and warns
/// once with runc 1.1's words ("ignoring unknown or unavailable capabilities: [CAP_FOO]"):
/// runc >= 1.1 runs such a config (profiles written for newer kernels name newer capabilities)
/// instead of refusing it. Returns the names dropped.
pub fn drop_unknown_capabilities(process: &mut serde_json::Value) -> Vec<String> {
    let mut dropped: Vec<String> = Vec::new();
    let Some(sets) = process.get_mut("capabilities").and_then(|c| c.as_object_mut()) else { return dropped };
    for list in sets.values_mut().filter_map(|l| l.as_array_mut()) {
        list.retain(|c| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
            if !known {
                let name = c.as_str().map_or_else(|| c.to_string(), str::to_string);
                if !dropped.contains(&name) {
                    dropped.push(name);
                }
            }
            known
        });
    }
    if !dropped.is_empty() {
        tracing::warn!("ignoring unknown or unavailable capabilities: [{}]", dropped.join(" "));
    }
    dropped
}

/// A capability name oci-spec refused (`no variant for CAP_FOO (converted to FOO)`) in a
/// capability set, so the error names it plainly.
pub fn unknown_capability(path: &str, msg: &str) -> Option<String> {
    if !path.contains("capabilities.") {
        return None;
    }
    let rest = msg.strip_prefix("no variant for ")?;
    Some(rest.rsplit_once(" (converted to ").map_or(rest, |(name, _)| name).to_string())
}

/// Parses a process JSON (`exec --process FILE`); the error starts with the JSON path of the bad
/// field, relative to the process object (`capabilities.bounding[3]: ...`).
pub fn parse_process(mut value: serde_json::Value) -> std::result::Result<oci_spec::runtime::Process, String> {
    drop_unknown_capabilities(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        match unknown_capability(&path, &inner) {
            Some(name) => format!("{path}: unknown capability {name}"),
            None if path == "." || path.is_empty() => inner,
            None => format!("{path}: {inner}"),
        }
    })
}

fn check_version(v: &str) -> std::result::Result<(), String> {
    if v.is_empty() {
        return Err("missing (expected a version in the range 1.0.0 - 1.3.x)".into());
    }
    let core = v.split(['-', '+']).next().unwrap_or(v);
    let mut parts = core.split('.');
    let major = parts.next().and_then(|p| p.parse::<u64>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u64>().ok());
    match (major, minor) {
        (Some(1), Some(m)) if m <= 3 => Ok(()),
        (Some(1), Some(_)) => {
            tracing::warn!("config ociVersion {v} is newer than {SUPPORTED_VERSIONS}; unknown fields are ignored");
            Ok(())
        }
        (Some(_), Some(_)) => Err(format!("unsupported version {v:?} (supported: {SUPPORTED_VERSIONS})")),
        _ => Err(format!("{v:?} is not a semantic version")),
    }
}

fn resolve_rootfs(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| Error::field("root", "missing (a container needs a root filesystem)"))?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(Error::field("root.path", "empty"));
    }
    let joined = if p.is_absolute() { p.clone() } else { dir.join(p) };
    let meta = fs::symlink_metadata(&joined).map_err(|e| Error::io("root.path", &joined, e))?;
    if meta.file_type().is_symlink() {
        return Err(Error::field("root.path", format!("{} is a symlink; give the real directory", joined.display())));
    }
    if !meta.is_dir() {
        return Err(Error::field("root.path", format!("{} is not a directory", joined.display())));
    }
    fs::canonicalize(&joined).map_err(|e| Error::io("root.path", &joined, e))
}

/// Checks that need no kernel: required fields and values that can never work.
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        validate_process(p)?;
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            if seen.contains(&ns.typ()) {
                return Err(Error::field(format!("linux.namespaces[{i}]"), format!("duplicate namespace {:?}", ns.typ())));
            }
            seen.push(ns.typ());
            if let Some(p) = ns.path() {
                if !p.is_absolute() {
                    return Err(Error::field(format!("linux.namespaces[{i}].path"), format!("{p:?} is not absolute")));
                }
            }
        }
        let has = |t| seen.contains(&t);
        let userns = has(LinuxNamespaceType::User);
        if !userns && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())) {
            return Err(Error::field("linux.uidMappings", "id mappings given without a user namespace"));
        }
        if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
            return Err(Error::field("linux.timeOffsets", "time offsets given without a time namespace"));
        }
        if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
            return Err(Error::field("hostname", "setting the hostname needs a new uts namespace"));
        }
        for (key, _) in linux.sysctl().iter().flatten() {
            crate::sysctl::check(key, &seen)?;
        }
        crate::personality::validate(spec)?;
        crate::process::sched::validate_linux(linux)?;
    }
    crate::netdev::validate(spec)?;
    crate::intelrdt::validate(spec)?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::field(format!("mounts[{i}].destination"), format!("{:?} is not an absolute path", m.destination())));
        }
    }
    Ok(())
}

/// Checks a process (of config.json or of `exec`).
pub fn validate_process(p: &oci_spec::runtime::Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::field("process.args", "missing or empty (give the program to run)"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::field("process.cwd", format!("{:?} is not an absolute path", p.cwd())));
    }
    crate::process::sched::validate_process(p)
}

/// Container ids: the same rule as runc (`^[\w+\-\.]+$`), and never `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok { Ok(()) } else { Err(Error::InvalidId(id.to_string())) }
}

/// The namespace list of a spec, or none.
pub fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux().as_ref().and_then(|l| l.namespaces().as_deref()).unwrap_or(&[])
}

/// Whether the spec asks for a namespace of this kind (new or joined).
pub fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}"#;

    #[test]
    fn parses_minimal_config() {
        let s = parse(MIN.as_bytes()).expect("parse");
        assert_eq!(s.process().as_ref().map(|p| p.cwd().clone()), Some("/".into()));
    }

    #[test]
    fn error_names_json_path() {
        let bad = r#"{"ociVersion":"1.0.2","process":{"args":[1],"cwd":"/"}}"#;
        let e = parse(bad.as_bytes()).unwrap_err();
        assert!(e.starts_with("process.args[0]: invalid type"), "{e}");
        let bad = r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"bogus"}]}}"#;
        let e = parse(bad.as_bytes()).unwrap_err();
        assert!(e.starts_with("linux.namespaces[0].type: unknown variant"), "{e}");
    }

    #[test]
    fn unknown_capabilities_are_dropped_as_in_runc() {
        let text = r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","capabilities":{"bounding":["CAP_KILL","CAP_CHOWN","CAP_SETUID","CAP_FOO"],"ambient":["KILL","cap_bogus","CAP_FOO"]}}}"#;
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut dropped = drop_unknown_capabilities(&mut v["process"]);
        dropped.sort();
        assert_eq!(dropped, ["CAP_FOO", "cap_bogus"]);
        let s = parse(text.as_bytes()).unwrap();
        let caps = s.process().as_ref().and_then(|p| p.capabilities().clone()).unwrap();
        assert_eq!(caps.bounding().as_ref().map(|b| b.len()), Some(3));
        assert_eq!(caps.ambient().as_ref().map(|b| b.len()), Some(1));
    }

    #[test]
    fn bad_personality_refused() {
        let s = parse(br#"{"ociVersion":"1.0.2","linux":{"personality":{"domain":"LINUX","flags":["NOPE"]}}}"#).unwrap();
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("linux.personality.flags[0]") && e.contains("NOPE"), "{e}");
        let e = parse(br#"{"ociVersion":"1.0.2","linux":{"personality":{"domain":"LINUX64"}}}"#).unwrap_err();
        assert!(e.starts_with("linux.personality.domain: unknown variant"), "{e}");
    }

    #[test]
    fn malformed_json_is_reported() {
        let e = parse(b"{\"ociVersion\": ").unwrap_err();
        assert!(e.contains("EOF"), "{e}");
    }

    #[test]
    fn versions_1_0_to_1_3_accepted_2_refused() {
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1", "1.3.0"] {
            assert!(check_version(v).is_ok(), "{v}");
        }
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("").is_err());
        assert!(check_version("abc").is_err());
    }

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "..a"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_cwd_refused() {
        let s = parse(br#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"tmp"}}"#).unwrap();
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("process.cwd"), "{e}");
    }
}
