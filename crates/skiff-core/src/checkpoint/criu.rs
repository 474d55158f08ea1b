//! criu's command line: the arguments of `criu dump`, `criu pre-dump` and `criu restore` for
//! a container, its version check, and the tail of its logs. Everything here but
//! [`version`] is pure, so the argument lists are unit-tested without root or criu.
//!
//! runc talks to criu over its RPC interface (`criu swrk`); the CLI takes the same options
//! (runc's `ExtMnt`, `External`, `InheritFd`, `CgRoot`, `FreezeCgroup`, `ManageCgroupsMode`,
//! `TrackMem`, `ParentImg` are `--ext-mount-map`, `--external`, `--inherit-fd`,
//! `--cgroup-root`, `--freeze-cgroup`, `--manage-cgroups`, `--track-mem`, `--prev-images-dir`).
//! What only the RPC interface has is the hand-over of a restored terminal's pty master
//! (`orphan-pts-master`): restoring a container with a terminal is refused.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::CriuFlags;
use crate::error::{Error, Result};

/// The oldest criu we drive: 3.14 restores cgroup2 freezers (runc asks the same of it).
pub const MIN_VERSION: (u32, u32, u32) = (3, 14, 0);

/// criu's log file in the work directory, as runc names them.
pub const DUMP_LOG: &str = "dump.log";
pub const RESTORE_LOG: &str = "restore.log";

/// The key of a network namespace given by path (dump: `--external net[INODE]:KEY`, restore:
/// `--inherit-fd fd[N]:KEY`), runc's and crun's.
pub const EXT_NETNS: &str = "extRootNetNS";

/// Options shared by dump and restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Common {
    pub images: PathBuf,
    pub work: PathBuf,
    pub flags: CriuFlags,
    /// `--ext-mount-map KEY:VALUE` pairs (dump: mount point, name in the image; restore: name
    /// in the image, host path to bind).
    pub ext_mounts: Vec<(String, String)>,
}

/// `criu dump` / `criu pre-dump` of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    pub common: Common,
    /// The container's init, as the host sees it.
    pub pid: i32,
    /// The container's root filesystem on the host.
    pub root: PathBuf,
    /// The container's freezer cgroup directory (v1 freezer, or its cgroup2 directory).
    pub freezer: Option<PathBuf>,
    /// `--external` resources (`net[INODE]:extRootNetNS` for a network namespace by path).
    pub external: Vec<String>,
    pub leave_running: bool,
    /// A pre-dump: memory only, the container keeps running.
    pub pre_dump: bool,
    /// The images of a previous pre-dump, relative to the image directory.
    pub parent: Option<PathBuf>,
}

/// `criu restore` of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restore {
    pub common: Common,
    /// Where the rootfs is bind-mounted for criu (`--root`).
    pub root: PathBuf,
    /// Where criu writes the restored init's pid.
    pub pidfile: PathBuf,
    /// `--inherit-fd fd[N]:KEY` pairs: our fd N stands for KEY of the images.
    pub inherit_fds: Vec<(i32, String)>,
    /// `--cgroup-root` values: `[controller:]/path` (a bare path is the default for all).
    pub cgroup_roots: Vec<String>,
    /// `--action-script`: the script that runs the restore's hooks (`hooks.rs`).
    pub action_script: Option<PathBuf>,
}

fn push(args: &mut Vec<OsString>, flag: &str, value: impl Into<OsString>) {
    args.push(flag.into());
    args.push(value.into());
}

fn common_args(args: &mut Vec<OsString>, c: &Common, log: &str) {
    push(args, "--images-dir", &c.images);
    push(args, "--work-dir", &c.work);
    push(args, "--log-file", log);
    args.push("-v4".into());
    for (flag, on) in [
        ("--tcp-established", c.flags.tcp_established),
        ("--ext-unix-sk", c.flags.ext_unix_sk),
        ("--shell-job", c.flags.shell_job),
        ("--file-locks", c.flags.file_locks),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    args.push(format!("--manage-cgroups={}", c.flags.manage_cgroups_mode.criu_value()).into());
    for (k, v) in &c.ext_mounts {
        push(args, "--ext-mount-map", format!("{k}:{v}"));
    }
}

/// The arguments (after the program) of `criu dump` or `criu pre-dump`.
pub fn dump_args(d: &Dump) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![if d.pre_dump { "pre-dump" } else { "dump" }.into()];
    push(&mut args, "--tree", d.pid.to_string());
    common_args(&mut args, &d.common, DUMP_LOG);
    push(&mut args, "--root", &d.root);
    if let Some(f) = &d.freezer {
        push(&mut args, "--freeze-cgroup", f);
    }
    for e in &d.external {
        push(&mut args, "--external", e);
    }
    if d.pre_dump || d.parent.is_some() {
        args.push("--track-mem".into());
    }
    if let Some(p) = &d.parent {
        push(&mut args, "--prev-images-dir", p);
    }
    if d.leave_running && !d.pre_dump {
        args.push("--leave-running".into());
    }
    args
}

/// The arguments (after the program) of `criu restore`: detached, the restored init becoming
/// our child (`--restore-sibling`), as with runc's RPC restore.
pub fn restore_args(r: &Restore) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["restore".into()];
    common_args(&mut args, &r.common, RESTORE_LOG);
    push(&mut args, "--root", &r.root);
    args.push("--restore-detached".into());
    args.push("--restore-sibling".into());
    push(&mut args, "--pidfile", &r.pidfile);
    for (fd, key) in &r.inherit_fds {
        push(&mut args, "--inherit-fd", format!("fd[{fd}]:{key}"));
    }
    for root in &r.cgroup_roots {
        push(&mut args, "--cgroup-root", root);
    }
    if let Some(script) = &r.action_script {
        push(&mut args, "--action-script", script);
    }
    args
}

/// The stdio of a container's init recorded at checkpoint (`descriptors.json`: a JSON array of
/// what fds 0, 1 and 2 pointed to, as runc writes it), as `--inherit-fd` pairs: each pipe is
/// replaced by the restoring runtime's own fd of the same number.
pub fn inherit_stdio(descriptors: &[String]) -> Vec<(i32, String)> {
    descriptors
        .iter()
        .enumerate()
        .filter(|(_, d)| d.starts_with("pipe:"))
        .filter_map(|(i, d)| Some((i32::try_from(i).ok()?, d.clone())))
        .collect()
}

/// `X.Y[.Z]` from `criu --version` ("Version: 4.1.1", or "Version: 3.17.1" with a "GitID" line).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.lines().find_map(|l| l.trim().strip_prefix("Version:"))?.trim();
    let mut parts = v.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).map(str::parse::<u32>);
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    Some((major, minor, patch))
}

/// Runs `criu --version`: an error naming the binary when it is missing, does not run, or is
/// older than [`MIN_VERSION`].
pub fn version(criu: &Path) -> Result<(u32, u32, u32)> {
    let out = Command::new(criu).arg("--version").output().map_err(|e| {
        Error::Criu(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "criu not found ({}): checkpoint/restore need criu {}.{} or newer; install it or pass --criu PATH",
                criu.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            )
        } else {
            format!("cannot run criu ({}): {e}", criu.display())
        })
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(v) = parse_version(&text).filter(|_| out.status.success()) else {
        return Err(Error::Criu(format!(
            "{} --version did not print a criu version ({}): {}",
            criu.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    };
    if v < MIN_VERSION {
        return Err(Error::Criu(format!(
            "criu {} is too old ({}.{}.{}): checkpoint/restore need {}.{} or newer",
            criu.display(),
            v.0,
            v.1,
            v.2,
            MIN_VERSION.0,
            MIN_VERSION.1
        )));
    }
    Ok(v)
}

/// Whether `criu check --feature NAME` passes (`mem_dirty_track`: the soft-dirty bits that
/// pre-dumps need).
pub fn has_feature(criu: &Path, name: &str) -> bool {
    Command::new(criu)
        .args(["check", "--feature", name])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The last `n` lines of a criu log, for an error message ("" when it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else { return String::new() };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What of a criu log explains a failure: its `Error` lines (the last `n`), else its last `n`
/// lines ("" when it cannot be read).
pub fn log_errors(path: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else { return String::new() };
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error (")).collect();
    if errors.is_empty() {
        return log_tail(path, n);
    }
    errors[errors.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CgroupMode;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn common() -> Common {
        Common {
            images: "/img".into(),
            work: "/work".into(),
            ..Common::default()
        }
    }

    #[test]
    fn dump_line() {
        let d = Dump {
            common: Common {
                ext_mounts: vec![("/data".into(), "/data".into()), ("/proc/kcore".into(), "/proc/kcore".into())],
                flags: CriuFlags {
                    file_locks: true,
                    tcp_established: true,
                    ..CriuFlags::default()
                },
                ..common()
            },
            pid: 42,
            root: "/b/rootfs".into(),
            freezer: Some("/sys/fs/cgroup/freezer/skiff/c1".into()),
            external: vec!["net[4026532]:extRootNetNS".into()],
            leave_running: true,
            ..Dump::default()
        };
        let line = strings(&dump_args(&d)).join(" ");
        assert_eq!(
            line,
            "dump --tree 42 --images-dir /img --work-dir /work --log-file dump.log -v4 --tcp-established --file-locks \
             --manage-cgroups=soft --ext-mount-map /data:/data --ext-mount-map /proc/kcore:/proc/kcore --root /b/rootfs \
             --freeze-cgroup /sys/fs/cgroup/freezer/skiff/c1 --external net[4026532]:extRootNetNS --leave-running"
        );
    }

    #[test]
    fn pre_dump_and_dump_on_a_parent() {
        let pre = Dump {
            common: common(),
            pid: 7,
            root: "/r".into(),
            pre_dump: true,
            leave_running: true,
            ..Dump::default()
        };
        let args = strings(&dump_args(&pre));
        assert_eq!(args[0], "pre-dump");
        assert!(args.contains(&"--track-mem".to_string()));
        // A pre-dump always leaves the container running: criu has no such flag for it.
        assert!(!args.contains(&"--leave-running".to_string()));
        assert!(!args.contains(&"--prev-images-dir".to_string()));

        let fin = Dump {
            common: common(),
            pid: 7,
            root: "/r".into(),
            parent: Some("../pre".into()),
            ..Dump::default()
        };
        let args = strings(&dump_args(&fin));
        assert_eq!(args[0], "dump");
        let at = args.iter().position(|a| a == "--prev-images-dir").expect("parent");
        assert_eq!(args[at + 1], "../pre");
        assert!(args.contains(&"--track-mem".to_string()));
    }

    #[test]
    fn cgroup_modes() {
        for (mode, flag) in [
            (CgroupMode::Soft, Some("--manage-cgroups=soft")),
            (CgroupMode::Full, Some("--manage-cgroups=full")),
            (CgroupMode::Strict, Some("--manage-cgroups=strict")),
            (CgroupMode::Ignore, Some("--manage-cgroups=ignore")),
        ] {
            let d = Dump {
                common: Common {
                    flags: CriuFlags {
                        manage_cgroups_mode: mode,
                        ..CriuFlags::default()
                    },
                    ..common()
                },
                ..Dump::default()
            };
            let args = strings(&dump_args(&d));
            assert_eq!(args.iter().find(|a| a.starts_with("--manage-cgroups")).map(String::as_str), flag);
        }
    }

    #[test]
    fn restore_line() {
        let r = Restore {
            common: Common {
                ext_mounts: vec![("/data".into(), "/srv/data".into())],
                flags: CriuFlags {
                    shell_job: true,
                    ext_unix_sk: true,
                    ..CriuFlags::default()
                },
                ..common()
            },
            root: "/run/skiff/c1/criu-root".into(),
            pidfile: "/run/skiff/c1/restore.pid".into(),
            inherit_fds: vec![(1, "pipe:[123]".into()), (5, EXT_NETNS.into())],
            cgroup_roots: vec!["/skiff/c1".into()],
            action_script: Some("/run/skiff/c1/criu-action.sh".into()),
        };
        let line = strings(&restore_args(&r)).join(" ");
        assert_eq!(
            line,
            "restore --images-dir /img --work-dir /work --log-file restore.log -v4 --ext-unix-sk --shell-job \
             --manage-cgroups=soft --ext-mount-map /data:/srv/data --root /run/skiff/c1/criu-root --restore-detached \
             --restore-sibling --pidfile /run/skiff/c1/restore.pid --inherit-fd fd[1]:pipe:[123] \
             --inherit-fd fd[5]:extRootNetNS --cgroup-root /skiff/c1 --action-script /run/skiff/c1/criu-action.sh"
        );
    }

    #[test]
    fn only_pipes_are_inherited() {
        let d = ["/dev/null".to_string(), "pipe:[77]".to_string(), "pipe:[78]".to_string()];
        assert_eq!(inherit_stdio(&d), vec![(1, "pipe:[77]".to_string()), (2, "pipe:[78]".to_string())]);
        assert!(inherit_stdio(&[]).is_empty());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("Version: 4.1.1\n"), Some((4, 1, 1)));
        assert_eq!(parse_version("Version: 3.17.1\nGitID: v3.17.1\n"), Some((3, 17, 1)));
        assert_eq!(parse_version("Version: 3.14\n"), Some((3, 14, 0)));
        assert_eq!(parse_version("criu: command not found"), None);
        assert!((3, 13, 9) < MIN_VERSION && (3, 14, 0) >= MIN_VERSION);
    }

    #[test]
    fn missing_or_broken_criu_is_a_clear_error() {
        let e = version(Path::new("/nonexistent/criu")).unwrap_err().to_string();
        assert!(e.contains("criu not found (/nonexistent/criu)") && e.contains("--criu"), "{e}");
        let e = version(Path::new("/bin/true")).unwrap_err().to_string();
        assert!(e.contains("did not print a criu version"), "{e}");
    }

    #[test]
    fn tail_of_a_log() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("dump.log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&p, 2), "c\nd");
        assert_eq!(log_tail(&p, 10), "a\nb\nc\nd");
        assert_eq!(log_tail(&tmp.path().join("none"), 3), "");
        assert_eq!(log_errors(&p, 2), "c\nd");
        std::fs::write(&p, "a\n(0.1) Error (x.c:1): first\nb\n(0.2) Error (y.c:2): second\nc\n").unwrap();
        assert_eq!(log_errors(&p, 8), "(0.1) Error (x.c:1): first\n(0.2) Error (y.c:2): second");
    }
}
