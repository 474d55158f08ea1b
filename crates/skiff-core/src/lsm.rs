//! AppArmor and SELinux labels of the container process (`process.apparmorProfile`,
//! `process.selinuxLabel`).
//!
//! As runc does: when the host has the LSM enabled, the label is set for the next exec through
//! `/proc/self/attr/...` (the kernel applies it at execve), and a failure is an error naming the
//! field; when the LSM is not enabled, the field is ignored with a debug message. The
//! directories under /proc are the container's own proc mount (this runs after pivot_root).

use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::error::{Error, Result};

/// Which LSMs the host runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled {
    pub apparmor: bool,
    pub selinux: bool,
}

impl Enabled {
    /// Reads the host's state: AppArmor's module parameter, SELinux's filesystem.
    pub fn probe() -> Enabled {
        let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'));
        let selinux = Path::new("/sys/fs/selinux/enforce").exists();
        Enabled { apparmor, selinux }
    }
}

/// One write into /proc/self/attr: (field, file, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelWrite {
    pub field: &'static str,
    pub file: PathBuf,
    pub value: String,
}

/// The writes `process` needs on a host with `enabled`; the ignored fields are logged.
pub fn plan(process: &Process, enabled: Enabled, apparmor_attr_dir: bool) -> Vec<LabelWrite> {
    let mut out = Vec::new();
    if let Some(profile) = process.apparmor_profile().as_deref().filter(|p| !p.is_empty()) {
        if enabled.apparmor {
            // Kernels with LSM stacking have a per-LSM directory; older ones only attr/exec.
            let file = if apparmor_attr_dir { "/proc/self/attr/apparmor/exec" } else { "/proc/self/attr/exec" };
            out.push(LabelWrite { field: "process.apparmorProfile", file: PathBuf::from(file), value: format!("exec {profile}") });
        } else {
            tracing::debug!("process.apparmorProfile {profile:?} ignored: AppArmor is not enabled on this host");
        }
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if enabled.selinux {
            out.push(LabelWrite { field: "process.selinuxLabel", file: PathBuf::from("/proc/self/attr/exec"), value: label.to_string() });
        } else {
            tracing::debug!("process.selinuxLabel {label:?} ignored: SELinux is not enabled on this host");
        }
    }
    out
}

/// `linux.mountLabel` where SELinux is enabled; elsewhere it is ignored with a debug message.
/// The host is probed (`enabled`) only when a label is set.
pub fn mount_label(spec: &oci_spec::runtime::Spec, enabled: impl FnOnce() -> Enabled) -> Option<&str> {
    let label = spec.linux().as_ref()?.mount_label().as_deref().filter(|l| !l.is_empty())?;
    if !enabled().selinux {
        tracing::debug!("linux.mountLabel {label:?} ignored: SELinux is not enabled on this host");
        return None;
    }
    Some(label)
}

/// A mount's data with the SELinux `context=` option for `label`, as runc adds it: to the
/// filesystems the runtime mounts (tmpfs, devpts, ...), not to proc, sysfs, mqueue and cgroup
/// (which have their own labels), not to bind mounts (which never reach here), and not when
/// the config already sets a context.
pub fn mount_data(data: Option<String>, fstype: &str, label: Option<&str>) -> Option<String> {
    let Some(label) = label else { return data };
    if matches!(fstype, "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2") || data.as_deref().is_some_and(|d| d.split(',').any(|o| o.starts_with("context="))) {
        return data;
    }
    let context = format!("context=\"{label}\"");
    Some(match data {
        Some(d) if !d.is_empty() => format!("{d},{context}"),
        _ => context,
    })
}

/// Sets the labels for the coming exec.
pub fn apply(process: &Process) -> Result<()> {
    if process.apparmor_profile().is_none() && process.selinux_label().is_none() {
        return Ok(());
    }
    let attr_dir = Path::new("/proc/self/attr/apparmor").is_dir();
    for w in plan(process, Enabled::probe(), attr_dir) {
        std::fs::write(&w.file, &w.value).map_err(|e| Error::field(w.field, format!("set {:?} through {}: {e}", w.value, w.file.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(json: serde_json::Value) -> Process {
        let mut base = serde_json::json!({"cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0}});
        if let (Some(b), Some(extra)) = (base.as_object_mut(), json.as_object()) {
            b.extend(extra.clone());
        }
        serde_json::from_value(base).expect("process")
    }

    #[test]
    fn labels_are_written_only_where_the_lsm_runs() {
        let p = process(serde_json::json!({"apparmorProfile": "docker-default", "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2"}));
        assert!(plan(&p, Enabled::default(), true).is_empty());
        let both = plan(&p, Enabled { apparmor: true, selinux: true }, true);
        assert_eq!(
            both,
            vec![
                LabelWrite { field: "process.apparmorProfile", file: "/proc/self/attr/apparmor/exec".into(), value: "exec docker-default".into() },
                LabelWrite { field: "process.selinuxLabel", file: "/proc/self/attr/exec".into(), value: "system_u:system_r:container_t:s0:c1,c2".into() },
            ]
        );
        let old_kernel = plan(&p, Enabled { apparmor: true, selinux: false }, false);
        assert_eq!(old_kernel.len(), 1);
        assert_eq!(old_kernel[0].file, PathBuf::from("/proc/self/attr/exec"));
        let none = process(serde_json::json!({}));
        assert!(plan(&none, Enabled { apparmor: true, selinux: true }, true).is_empty());
    }

    #[test]
    fn mount_label_goes_into_the_data_of_runtime_mounts_only() {
        let mut spec = crate::template::default_spec(false);
        assert_eq!(mount_label(&spec, || panic!("the host was probed without a label")), None);
        if let Some(l) = spec.linux_mut() {
            l.set_mount_label(Some("system_u:object_r:container_file_t:s0:c1,c2".into()));
        }
        assert_eq!(mount_label(&spec, Enabled::default), None, "ignored without SELinux");
        let label = mount_label(&spec, || Enabled { apparmor: false, selinux: true });
        assert_eq!(label, Some("system_u:object_r:container_file_t:s0:c1,c2"));
        assert_eq!(
            mount_data(Some("mode=755,size=65536k".into()), "tmpfs", label).as_deref(),
            Some("mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0:c1,c2\"")
        );
        assert_eq!(mount_data(None, "devpts", Some("l")).as_deref(), Some("context=\"l\""));
        for fs in ["proc", "sysfs", "mqueue", "cgroup"] {
            assert_eq!(mount_data(None, fs, Some("l")), None, "{fs}");
        }
        assert_eq!(mount_data(Some("context=\"x\"".into()), "tmpfs", Some("l")).as_deref(), Some("context=\"x\""));
        assert_eq!(mount_data(Some("size=1k".into()), "tmpfs", None).as_deref(), Some("size=1k"));
    }
}
