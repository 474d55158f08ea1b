//! containerd 1.6's CRI plugin running pods on skiff-runtime, driven through the CRI v1 gRPC API
//! as the kubelet drives it.
//!
//! The test starts its own containerd with root, state, sockets and the runc root in a temp dir
//! and the CRI plugin enabled: a runtime handler `skiff` (`io.containerd.runc.v2` with
//! `BinaryName` = a wrapper that logs each call and execs our binary, `Root` in the temp dir),
//! a default `runc` handler whose binary only fails (so nothing can silently run elsewhere), CNI
//! dirs that are empty (the pods use the host network: no CNI), a sandbox ("pause") image built
//! here from a static C pause and a busybox workload image, both imported with
//! `ctr -n k8s.io images import`: no registry, no network.
//!
//! The client is a small gRPC client (tonic) over the unix socket with the CRI messages it needs
//! written out as prost structs (tags from `k8s.io/cri-api` `runtime/v1/api.proto`), so no
//! `protoc` is needed to build it. It calls Version, RunPodSandbox (handler `skiff`, host
//! network), PodSandboxStatus, CreateContainer, StartContainer, ContainerStatus, ExecSync,
//! StopContainer, RemoveContainer, StopPodSandbox and RemovePodSandbox, and checks that the
//! sandbox and the container each have skiff's state under the handler's root and were
//! created/started/exec'd/deleted through the wrapper.
//!
//! Cleanup runs at process exit (atexit), also after a failure: pods removed through ctr, the
//! daemon stopped, leftover shims and pod processes killed by pid and reaped (this process is a
//! child subreaper), mounts under the temp dir detached, the pods' cgroups (under a parent named
//! after this process) removed, `/run/containerd` only if the test created it, the temp dir.
//!
//! Skipped (passes, says why) when not root or containerd, ctr, the shim, cc (static libc),
//! busybox-static, tar or sha256sum is missing.

mod common;

use common::clients::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PAUSE_IMAGE: &str = "docker.io/skiff/pause:cri-test";
const BUSYBOX_IMAGE: &str = "docker.io/skiff/busybox:cri-test";
/// containerd's namespace for CRI.
const NS: &str = "k8s.io";
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits for SIGINT/SIGTERM and reaps children, as Kubernetes' pause.c does.
const PAUSE_C: &str = r#"
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
static void sigdown(int signo) { _exit(signo == SIGTERM ? 0 : 2); }
static void sigreap(int signo) { (void)signo; while (waitpid(-1, NULL, WNOHANG) > 0) ; }
int main(void) {
    struct sigaction down = { .sa_handler = sigdown };
    struct sigaction reap = { .sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP };
    if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0
        || sigaction(SIGCHLD, &reap, NULL) < 0)
        return 1;
    for (;;) pause();
}
"#;

// ---------------------------------------------------------------------------------------------
// The CRI v1 messages used here (package runtime.v1), tags as in api.proto.

mod cri {
    #![allow(dead_code)]

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionRequest {
        #[prost(string, tag = "1")]
        pub version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub runtime_name: String,
        #[prost(string, tag = "3")]
        pub runtime_version: String,
        #[prost(string, tag = "4")]
        pub runtime_api_version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub uid: String,
        #[prost(string, tag = "3")]
        pub namespace: String,
        #[prost(uint32, tag = "4")]
        pub attempt: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<PodSandboxMetadata>,
        #[prost(string, tag = "2")]
        pub hostname: String,
        #[prost(string, tag = "3")]
        pub log_directory: String,
        #[prost(message, optional, tag = "8")]
        pub linux: Option<LinuxPodSandboxConfig>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxPodSandboxConfig {
        #[prost(string, tag = "1")]
        pub cgroup_parent: String,
        #[prost(message, optional, tag = "2")]
        pub security_context: Option<LinuxSandboxSecurityContext>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxSandboxSecurityContext {
        #[prost(message, optional, tag = "1")]
        pub namespace_options: Option<NamespaceOption>,
    }
    /// NamespaceMode: POD = 0, CONTAINER = 1, NODE = 2, TARGET = 3.
    pub const POD: i32 = 0;
    pub const CONTAINER: i32 = 1;
    pub const NODE: i32 = 2;
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamespaceOption {
        #[prost(int32, tag = "1")]
        pub network: i32,
        #[prost(int32, tag = "2")]
        pub pid: i32,
        #[prost(int32, tag = "3")]
        pub ipc: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxRequest {
        #[prost(message, optional, tag = "1")]
        pub config: Option<PodSandboxConfig>,
        #[prost(string, tag = "2")]
        pub runtime_handler: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxResponse {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxStatusRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxStatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<PodSandboxStatus>,
    }
    /// PodSandboxState: SANDBOX_READY = 0, SANDBOX_NOTREADY = 1.
    pub const SANDBOX_READY: i32 = 0;
    pub const SANDBOX_NOTREADY: i32 = 1;
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxStatus {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(int32, tag = "3")]
        pub state: i32,
        #[prost(string, tag = "9")]
        pub runtime_handler: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(uint32, tag = "2")]
        pub attempt: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ImageSpec {
        #[prost(string, tag = "1")]
        pub image: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(message, optional, tag = "2")]
        pub image: Option<ImageSpec>,
        #[prost(string, repeated, tag = "3")]
        pub command: Vec<String>,
        #[prost(string, repeated, tag = "4")]
        pub args: Vec<String>,
        #[prost(string, tag = "5")]
        pub working_dir: String,
        #[prost(message, repeated, tag = "6")]
        pub envs: Vec<KeyValue>,
        #[prost(string, tag = "11")]
        pub log_path: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(message, optional, tag = "2")]
        pub config: Option<ContainerConfig>,
        #[prost(message, optional, tag = "3")]
        pub sandbox_config: Option<PodSandboxConfig>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerResponse {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }
    /// StartContainerRequest, RemoveContainerRequest (container_id = 1).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerIdRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }
    /// StopPodSandboxRequest, RemovePodSandboxRequest (pod_sandbox_id = 1).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SandboxIdRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }
    /// The empty responses.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StopContainerRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(int64, tag = "2")]
        pub timeout: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExecSyncRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(string, repeated, tag = "2")]
        pub cmd: Vec<String>,
        #[prost(int64, tag = "3")]
        pub timeout: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExecSyncResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub stdout: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub stderr: Vec<u8>,
        #[prost(int32, tag = "3")]
        pub exit_code: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<ContainerStatus>,
    }
    /// ContainerState: CREATED = 0, RUNNING = 1, EXITED = 2, UNKNOWN = 3.
    pub const CONTAINER_CREATED: i32 = 0;
    pub const CONTAINER_RUNNING: i32 = 1;
    pub const CONTAINER_EXITED: i32 = 2;
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatus {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(int32, tag = "3")]
        pub state: i32,
        #[prost(int32, tag = "7")]
        pub exit_code: i32,
        #[prost(string, tag = "10")]
        pub reason: String,
        #[prost(string, tag = "11")]
        pub message: String,
        #[prost(string, tag = "15")]
        pub log_path: String,
    }
}

/// A CRI client on containerd's socket.
struct Client {
    rt: tokio::runtime::Runtime,
    channel: tonic::transport::Channel,
}

impl Client {
    fn connect(sock: &Path) -> Result<Client, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let sock = sock.to_path_buf();
        let channel = rt.block_on(async move {
            tonic::transport::Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                    let sock = sock.clone();
                    async move {
                        let s = tokio::net::UnixStream::connect(sock).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                }))
                .await
                .map_err(|e| format!("{e:?}"))
        })?;
        Ok(Client { rt, channel })
    }

    /// One unary call of `runtime.v1.RuntimeService`.
    fn call<Q, R>(&self, method: &str, req: Q) -> Result<R, tonic::Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        let path: tonic::codegen::http::uri::PathAndQuery = format!("/runtime.v1.RuntimeService/{method}").parse().expect("a valid path");
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        self.rt.block_on(async move {
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut request = tonic::Request::new(req);
            request.set_timeout(CMD_TIMEOUT);
            grpc.unary(request, path, tonic_prost::ProstCodec::<Q, R>::default())
                .await
                .map(tonic::Response::into_inner)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon.

struct Daemon {
    dir: PathBuf,
    /// Parent of the pods' cgroups, in every hierarchy.
    cgroup_parent: String,
    child: Mutex<Option<Child>>,
    run_dir_existed: bool,
}

static DAEMON: OnceLock<Option<Daemon>> = OnceLock::new();

fn daemon() -> Option<&'static Daemon> {
    DAEMON
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipping CRI test: needs root");
                return None;
            }
            for tool in ["containerd", "ctr", "containerd-shim-runc-v2", "tar", "sha256sum", "cc"] {
                if which(tool).is_none() {
                    eprintln!("skipping CRI test: {tool} is not installed (scripts/setup.sh installs containerd)");
                    return None;
                }
            }
            if !Path::new("/bin/busybox").exists() {
                eprintln!("skipping CRI test: needs /bin/busybox (busybox-static)");
                return None;
            }
            start_daemon()
        })
        .as_ref()
}

/// Builds the static pause binary into `out`; false when cc cannot link statically.
fn build_pause(dir: &Path, out: &Path) -> bool {
    let src = dir.join("pause.c");
    std::fs::write(&src, PAUSE_C).unwrap();
    let o = Command::new("cc").args(["-static", "-O2", "-o"]).arg(out).arg(&src).output().expect("run cc");
    if !o.status.success() {
        eprintln!("skipping CRI test: cc -static failed (libc6-dev?): {}", String::from_utf8_lossy(&o.stderr));
    }
    o.status.success()
}

fn start_daemon() -> Option<Daemon> {
    nix::sys::prctl::set_child_subreaper(true).expect("become a child subreaper");
    let dir = tempfile::Builder::new().prefix("skcri").tempdir_in("/tmp").expect("temp dir").keep();
    let pause_root = dir.join("pause-image/rootfs");
    std::fs::create_dir_all(&pause_root).unwrap();
    if !build_pause(&dir, &pause_root.join("pause")) {
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    let run_dir_existed = Path::new("/run/containerd").exists();
    // SAFETY: registering a plain extern "C" fn; it only runs at exit.
    unsafe {
        libc::atexit(cleanup_at_exit);
    }
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["cni/bin", "cni/conf", "fifo", "logs"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let d = dir.display();
    // The handler's binary: logs each call, then runs skiff-runtime.
    let wrapper = bin.join("skiff-logged");
    std::fs::write(&wrapper, format!("#!/bin/sh\necho \"$*\" >> {d}/calls.log\nexec {} \"$@\"\n", common::BIN)).unwrap();
    // The default handler's: must never run.
    let not_runc = bin.join("not-runc");
    std::fs::write(
        &not_runc,
        format!("#!/bin/sh\necho \"$*\" >> {d}/not-runc.log\necho 'default runtime used: not skiff' >&2\nexit 1\n"),
    )
    .unwrap();
    for f in [&wrapper, &not_runc] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cgroup_parent = format!("/skiff-cri-{}", std::process::id());
    // The sandbox's oomScoreAdj is -998: lowering it needs CAP_SYS_RESOURCE, which some hosts
    // (containers, this project's VM) do not give even to root; runc fails there the same way
    // ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"). containerd's
    // answer for such hosts: clamp to its own score.
    let restrict_oom = !has_cap_sys_resource();
    if restrict_oom {
        eprintln!("no CAP_SYS_RESOURCE here: restrict_oom_score_adj = true");
    }
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.ttrpc.sock"
[debug]
  address = ""
  level = "debug"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_selinux = false
  restrict_oom_score_adj = {restrict_oom}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{d}/bin/not-runc"
        Root = "{d}/not-runc-root"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff.options]
        BinaryName = "{d}/bin/skiff-logged"
        Root = "{d}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let child = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start containerd");
    let daemon = Daemon {
        dir,
        cgroup_parent,
        child: Mutex::new(Some(child)),
        run_dir_existed,
    };
    let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t0 = Instant::now();
        while !daemon.ctr(&["version"]).status.success() {
            assert!(t0.elapsed() < Duration::from_secs(20), "containerd did not come up:\n{}", daemon.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
        // The pause image: /pause only.
        let pause = daemon.dir.join("pause-image");
        build_oci_archive(
            &pause,
            &pause.join("rootfs"),
            PAUSE_IMAGE,
            json!({"Entrypoint": ["/pause"], "WorkingDir": "/"}),
            &daemon.dir.join("pause.tar"),
        );
        // The workload image: busybox.
        let busybox = daemon.dir.join("busybox-image");
        common::make_rootfs(&busybox.join("rootfs"));
        build_oci_archive(
            &busybox,
            &busybox.join("rootfs"),
            BUSYBOX_IMAGE,
            json!({
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sh"],
                "WorkingDir": "/"
            }),
            &daemon.dir.join("busybox.tar"),
        );
        for archive in ["pause.tar", "busybox.tar"] {
            let path = daemon.dir.join(archive);
            daemon.ok(&["images", "import", path.to_str().unwrap()]);
        }
    }));
    if let Err(e) = ready {
        daemon.cleanup();
        std::panic::resume_unwind(e);
    }
    Some(daemon)
}

/// CAP_SYS_RESOURCE (24) in our effective set.
fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

impl Daemon {
    fn ctr(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(self.dir.join("c.sock")).arg("--namespace").arg(NS).args(args);
        run_captured(cmd, None, CMD_TIMEOUT, &format!("ctr {args:?}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(
            o.status.success(),
            "ctr {args:?} failed ({}): {}{}\n{}",
            o.status,
            o.stdout,
            o.stderr,
            self.log_tail()
        );
        o.stdout
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("level=error") || l.contains("level=warn")).collect();
        format!(
            "containerd.log (errors and warnings, tail):\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }

    /// skiff's state dir for `id` under the handler's root (`Root` + namespace).
    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.join("runc").join(NS).join(id)
    }

    /// `id` went through skiff-runtime: skiff's state.json (runc's has `init_process_pid`, ours
    /// `pid_start` and `cgroup_created`) under the handler's root.
    fn assert_ours(&self, id: &str) -> Value {
        let p = self.state_dir(id).join("state.json");
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}: not created by skiff-runtime?", p.display()));
        let v: Value = serde_json::from_str(&text).expect("state.json is JSON");
        assert!(v.get("pid_start").is_some() && v.get("cgroup_created").is_some(), "not skiff's state: {text}");
        assert!(v.get("init_process_pid").is_none(), "runc's state: {text}");
        assert_eq!(v["id"], id);
        v
    }

    /// `skiff-runtime state ID` under the handler's root: the status it reports.
    fn runtime_status(&self, id: &str) -> String {
        let o = Command::new(common::BIN)
            .arg("--root")
            .arg(self.dir.join("runc").join(NS))
            .args(["state", id])
            .output()
            .expect("run skiff-runtime state");
        assert!(o.status.success(), "skiff-runtime state {id}: {}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).expect("state output is JSON");
        v["status"].as_str().unwrap_or_default().to_string()
    }

    /// The wrapper's log: one line per skiff-runtime call.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A call `<global flags> verb ... id` was made.
    fn called(&self, verb: &str, id: &str) -> bool {
        self.calls().iter().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.contains(&verb) && words.last() == Some(&id)
        })
    }

    fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join(self.cgroup_parent.trim_start_matches('/')).join(id))
            .filter(|p| p.exists())
            .collect()
    }

    fn cleanup(&self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let sigkill = |pid: i32| {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        };
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none()) {
            for id in self.ctr(&["task", "ls", "-q"]).stdout.lines() {
                let _ = self.ctr(&["task", "rm", "--force", id]);
            }
            for id in self.ctr(&["container", "ls", "-q"]).stdout.lines() {
                let _ = self.ctr(&["container", "rm", id]);
            }
        }
        if let Some(c) = child.take() {
            terminate(c, Duration::from_secs(10));
        }
        // Shims of this daemon, and processes left in the pods' cgroups.
        let sock = self.dir.join("c.sock").display().to_string();
        for pid in pids_with_arg(&sock) {
            sigkill(pid);
        }
        sweep_after_daemon(&self.dir, &self.cgroup_parent);
        if !self.run_dir_existed {
            for d in ["/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd"] {
                let _ = std::fs::remove_dir(d);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

extern "C" fn cleanup_at_exit() {
    if let Some(Some(d)) = DAEMON.get() {
        d.cleanup();
    }
}

// ---------------------------------------------------------------------------------------------
// Images: oci-archives built here.

/// An OCI image layout in `dir/layout` (one uncompressed layer: `rootfs`), named `name`, with
/// the image config's `config` section, tarred into `archive`.
fn build_oci_archive(dir: &Path, rootfs: &Path, name: &str, config: Value, archive: &Path) {
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer = dir.join("layer.tar");
    let st = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "--sort=name", "-C"])
        .arg(rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar of the layer failed");
    let (layer_digest, layer_size) = blob(&layout, &std::fs::read(&layer).unwrap());
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let image_config = json!({
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    });
    let (config_digest, config_size) = blob(&layout, &serde_json::to_vec(&image_config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
    });
    let (manifest_digest, manifest_size) = blob(&layout, &serde_json::to_vec(&manifest).unwrap());
    let tag = name.rsplit(':').next().unwrap_or("latest");
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(archive)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar of the archive failed");
}

// ---------------------------------------------------------------------------------------------
// The test.

fn sandbox_config(d: &Daemon) -> cri::PodSandboxConfig {
    let pid = std::process::id();
    let log_dir = d.dir.join("logs/pod");
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "hello-skiff".into(),
            uid: format!("uid-{pid}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: log_dir.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: d.cgroup_parent.clone(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NODE,
                    pid: cri::CONTAINER,
                    ipc: cri::POD,
                }),
            }),
        }),
    }
}

fn exec_sync(c: &Client, d: &Daemon, id: &str, cmd: &[&str]) -> cri::ExecSyncResponse {
    c.call(
        "ExecSync",
        cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        },
    )
    .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}\n{}", d.log_tail()))
}

fn container_status(c: &Client, id: &str) -> cri::ContainerStatus {
    c.call::<_, cri::ContainerStatusResponse>(
        "ContainerStatus",
        cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        },
    )
    .expect("ContainerStatus")
    .status
    .expect("a status")
}

#[test]
fn pod_lifecycle_through_cri_on_skiff_handler() {
    let Some(d) = daemon() else { return };
    let t0 = Instant::now();
    let c = Client::connect(&d.dir.join("c.sock")).expect("connect to containerd's socket");

    let v: cri::VersionResponse = c
        .call("Version", cri::VersionRequest { version: "v1".into() })
        .unwrap_or_else(|e| panic!("Version: {e}\n{}", d.log_tail()));
    assert_eq!(v.runtime_name, "containerd", "{v:?}");
    assert_eq!(v.runtime_api_version, "v1", "{v:?}");

    // The pod: handler skiff, host network.
    let sandbox = sandbox_config(d);
    std::fs::create_dir_all(&sandbox.log_directory).unwrap();
    let r: cri::RunPodSandboxResponse = c
        .call(
            "RunPodSandbox",
            cri::RunPodSandboxRequest {
                config: Some(sandbox.clone()),
                runtime_handler: "skiff".into(),
            },
        )
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\ncalls: {:?}\n{}", d.calls(), d.log_tail()));
    let pod = r.pod_sandbox_id;
    let pod_state = d.assert_ours(&pod);
    assert!(d.called("create", &pod), "calls: {:?}", d.calls());
    assert!(d.called("start", &pod), "calls: {:?}", d.calls());
    assert_eq!(d.runtime_status(&pod), "running");
    let pause_pid = pod_state["pid"].as_i64().expect("pid in state.json");
    assert!(alive(pause_pid));
    // `start` returns once the init is released; its execve may come a moment later.
    let comm = || std::fs::read_to_string(format!("/proc/{pause_pid}/comm")).unwrap_or_default();
    wait_until("the sandbox's init to exec /pause", Duration::from_secs(10), || comm().trim() == "pause");
    assert!(!d.cgroup_dirs(&pod).is_empty(), "no cgroup of the sandbox under {}", d.cgroup_parent);
    let st: cri::PodSandboxStatusResponse = c
        .call(
            "PodSandboxStatus",
            cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            },
        )
        .expect("PodSandboxStatus");
    let st = st.status.expect("a status");
    assert_eq!(st.state, cri::SANDBOX_READY, "{st:?}");
    assert_eq!(st.runtime_handler, "skiff", "{st:?}");

    // A container in it: a trap makes SIGTERM (StopContainer) exit 7.
    let script = "trap 'echo bye; exit 7' TERM; echo hello from skiff; \
                  while :; do sleep 0.05; done";
    let created: cri::CreateContainerResponse = c
        .call(
            "CreateContainer",
            cri::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "work".into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec { image: BUSYBOX_IMAGE.into() }),
                    command: vec!["sh".into(), "-c".into()],
                    args: vec![script.into()],
                    working_dir: "/tmp".into(),
                    envs: vec![cri::KeyValue {
                        key: "FOO".into(),
                        value: "bar".into(),
                    }],
                    log_path: "work.log".into(),
                }),
                sandbox_config: Some(sandbox.clone()),
            },
        )
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\ncalls: {:?}\n{}", d.calls(), d.log_tail()));
    let ctr = created.container_id;
    // containerd's CRI makes the task (the runtime's create) at StartContainer.
    assert!(!d.state_dir(&ctr).exists());
    assert_eq!(container_status(&c, &ctr).state, cri::CONTAINER_CREATED);
    c.call::<_, cri::Empty>("StartContainer", cri::ContainerIdRequest { container_id: ctr.clone() })
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", d.log_tail()));
    assert!(d.called("create", &ctr), "calls: {:?}", d.calls());
    assert!(d.called("start", &ctr), "calls: {:?}", d.calls());
    d.assert_ours(&ctr);
    assert_eq!(d.runtime_status(&ctr), "running");
    assert_eq!(container_status(&c, &ctr).state, cri::CONTAINER_RUNNING);
    let log = Path::new(&sandbox.log_directory).join("work.log");
    wait_until("the container's output in its CRI log", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains(" stdout F hello from skiff")
    });
    assert!(!d.cgroup_dirs(&ctr).is_empty(), "no cgroup of the container under {}", d.cgroup_parent);

    // ExecSync: stdout, stderr, env, cwd, exit codes; host network.
    let r = exec_sync(&c, d, &ctr, &["sh", "-c", "echo out $FOO; pwd; echo err >&2"]);
    assert_eq!(
        (
            String::from_utf8_lossy(&r.stdout).as_ref(),
            String::from_utf8_lossy(&r.stderr).as_ref(),
            r.exit_code
        ),
        ("out bar\n/tmp\n", "err\n", 0)
    );
    assert!(d.called("exec", &ctr), "calls: {:?}", d.calls());
    let r = exec_sync(&c, d, &ctr, &["sh", "-c", "exit 3"]);
    assert_eq!(r.exit_code, 3, "{r:?}");
    let r = exec_sync(&c, d, &ctr, &["readlink", "/proc/self/ns/net"]);
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&r.stdout).trim(),
        host_net.to_str().unwrap(),
        "a host-network pod shares the host's network namespace"
    );
    let r = exec_sync(&c, d, &ctr, &["readlink", "/proc/self/ns/pid"]);
    let host_pid = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_ne!(
        String::from_utf8_lossy(&r.stdout).trim(),
        host_pid.to_str().unwrap(),
        "the container has its own pid namespace"
    );
    // A missing binary: an error with runc's text (what kubelet's probes report).
    let e = c
        .call::<_, cri::ExecSyncResponse>(
            "ExecSync",
            cri::ExecSyncRequest {
                container_id: ctr.clone(),
                cmd: vec!["/no/such/binary".into()],
                timeout: 30,
            },
        )
        .expect_err("exec of a missing binary fails");
    assert!(e.message().contains("exec: \"/no/such/binary\": no such file or directory"), "{e}");

    // StopContainer: SIGTERM reaches the trap.
    c.call::<_, cri::Empty>(
        "StopContainer",
        cri::StopContainerRequest {
            container_id: ctr.clone(),
            timeout: 10,
        },
    )
    .unwrap_or_else(|e| panic!("StopContainer: {e}\n{}", d.log_tail()));
    let st = container_status(&c, &ctr);
    assert_eq!((st.state, st.exit_code), (cri::CONTAINER_EXITED, 7), "{st:?}");
    assert!(std::fs::read_to_string(&log).unwrap_or_default().contains(" stdout F bye"));
    c.call::<_, cri::Empty>("RemoveContainer", cri::ContainerIdRequest { container_id: ctr.clone() })
        .unwrap_or_else(|e| panic!("RemoveContainer: {e}\n{}", d.log_tail()));
    assert!(d.called("delete", &ctr), "calls: {:?}", d.calls());
    assert!(!d.state_dir(&ctr).exists(), "skiff state of {ctr} left");
    assert!(d.cgroup_dirs(&ctr).is_empty(), "cgroups left: {:?}", d.cgroup_dirs(&ctr));

    // The pod.
    c.call::<_, cri::Empty>("StopPodSandbox", cri::SandboxIdRequest { pod_sandbox_id: pod.clone() })
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", d.log_tail()));
    wait_until("the pause process to go", Duration::from_secs(10), || !alive(pause_pid));
    let st: cri::PodSandboxStatusResponse = c
        .call(
            "PodSandboxStatus",
            cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            },
        )
        .expect("PodSandboxStatus");
    assert_eq!(st.status.expect("a status").state, cri::SANDBOX_NOTREADY);
    c.call::<_, cri::Empty>("RemovePodSandbox", cri::SandboxIdRequest { pod_sandbox_id: pod.clone() })
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", d.log_tail()));
    assert!(d.called("delete", &pod), "calls: {:?}", d.calls());
    assert!(!d.state_dir(&pod).exists(), "skiff state of {pod} left");
    assert!(d.cgroup_dirs(&pod).is_empty(), "cgroups left: {:?}", d.cgroup_dirs(&pod));
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for id in [&pod, &ctr] {
        assert!(!mi.contains(id.as_str()), "a mount of {id} is left");
    }
    assert!(d.ok(&["container", "ls", "-q"]).trim().is_empty());

    // Nothing ran on the default handler; every runtime call was for these two.
    assert!(
        !d.dir.join("not-runc.log").exists(),
        "the default runtime was called: {:?}",
        std::fs::read_to_string(d.dir.join("not-runc.log"))
    );
    for l in d.calls() {
        assert!(
            l.contains(&pod) || l.contains(&ctr) || l.contains(" features") || l == "features",
            "unexpected call: {l}"
        );
    }
    eprintln!("CRI pod lifecycle on skiff: {:?}, {} runtime calls", t0.elapsed(), d.calls().len());
}
