//! The engine's record of a container (`containers/<id>/container.json`): what was asked for
//! at `create` (Docker's `Config` and `HostConfig`), the mounts it resolved to, and the last
//! known state. Field names follow Docker's inspect output, which is built from this record.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    /// Whether a process of the container may be alive.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub config: Config,
    pub host_config: HostConfig,
    pub mounts: Vec<MountPoint>,
    pub state: State,
    pub restart_count: u32,
    /// Set by `stop`/`kill`: the restart policy does not restart what the user stopped.
    pub manually_stopped: bool,
    /// "overlay2" (also when empty: older records) or "vfs", the copying fallback.
    pub driver: String,
    pub network_settings: NetworkSettings,
}

pub const DRIVER_OVERLAY: &str = "overlay2";
pub const DRIVER_VFS: &str = "vfs";

impl ContainerRecord {
    pub fn is_vfs(&self) -> bool {
        self.driver == DRIVER_VFS
    }
}

/// Docker's `Config`: the process and what the image contributed.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub image: String,
    pub working_dir: String,
    pub entrypoint: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// "80/tcp" -> {} (the image's and `--expose`'s; `-P` publishes them).
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// "no", "always", "unless-stopped", "on-failure" (Docker writes "" for no).
    pub name: String,
    pub maximum_retry_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

/// Docker's `HostConfig`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub read_only_rootfs: bool,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<Ulimit>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub init: Option<bool>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub network_mode: String,
    pub log_config: LogConfig,
    /// `-p`: "80/tcp" -> bindings (an empty host port: one the kernel picks at start).
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub publish_all_ports: bool,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP` (IP may be `host-gateway`).
    pub extra_hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// Docker's `NetworkSettings`: the networks a container is connected to (what was asked for
/// and, while it runs, what it got) and its published ports.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    pub networks: BTreeMap<String, Endpoint>,
    /// While running: "80/tcp" -> the host ports it got (None: exposed, not published).
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    /// `/proc/<init>/ns/net` while running.
    pub sandbox_key: String,
    /// Rootless: the pasta/slirp4netns process that gives the container its network.
    #[serde(rename = "SkiffRootlessNet", skip_serializing_if = "Option::is_none")]
    pub rootless_net: Option<skiff_net::rootless::Attached>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct IpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6: String,
}

/// One network connection (Docker's `EndpointSettings`). The `IPAMConfig`, aliases and the
/// requested MAC are what the user asked for; the addresses are what the last start got
/// (cleared when the container stops).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct Endpoint {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
    #[serde(rename = "Aliases")]
    pub aliases: Vec<String>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// `--mac-address`.
    #[serde(rename = "SkiffRequestedMac", skip_serializing_if = "String::is_empty")]
    pub requested_mac: String,
    /// The interface in the container (eth0, eth1, ... in the order of connection).
    #[serde(rename = "SkiffInterface")]
    pub interface: String,
    /// The host end of its veth pair, while running.
    #[serde(rename = "SkiffHostInterface", skip_serializing_if = "String::is_empty")]
    pub host_interface: String,
}

/// A resolved mount, as inspect's `Mounts` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// "bind", "volume" or "tmpfs".
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
    /// Extra mount options (tmpfs size/mode, bind propagation); not shown by Docker.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    /// The monitor's pid and start time (clock ticks since boot): a reused pid is not ours.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub exit_code: i32,
    pub error: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
}

/// The zero time Docker prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl ContainerRecord {
    pub fn load(path: &Path) -> Result<ContainerRecord> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }

    /// Writes the record atomically (temp file, fsync-free rename: a crash leaves the old or
    /// the new record, never a torn one).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Other(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
    }

    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// The program and its arguments: entrypoint then cmd.
    pub fn argv(&self) -> Vec<String> {
        self.config.entrypoint.iter().chain(self.config.cmd.iter()).cloned().collect()
    }
}

/// What the monitor wrote when the container's init exited.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: String,
}

impl ExitRecord {
    pub fn load(path: &Path) -> Option<ExitRecord> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// Written by the monitor-to-be once the container runs (`<dir>/monitor.json`), so that a
/// start whose caller was killed before recording it is still known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorFile {
    pub pid: i32,
    pub start: u64,
    pub init: i32,
    pub started_at: String,
}

impl MonitorFile {
    pub fn load(path: &Path) -> Option<MonitorFile> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}
