//! The command line, with Docker's commands, flags and short forms.

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "skiff", version, about = "A daemonless, Docker-like container engine", disable_help_subcommand = true)]
pub struct Cli {
    /// The store (default /var/lib/skiff; $XDG_DATA_HOME/skiff for a non-root user)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    /// Run without root privileges (the default for a non-root user)
    #[arg(long, global = true)]
    pub rootless: bool,
    /// Storage driver of new containers: overlay2 (default) or vfs (copies the image; for
    /// filesystems overlayfs cannot use). Also $SKIFF_STORAGE_DRIVER.
    #[arg(long = "storage-driver", global = true, value_name = "DRIVER")]
    pub storage_driver: Option<String>,
    /// Log what the engine does (and phase timings) to stderr
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// List containers
    #[command(alias = "ls")]
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Attach to a running container's input and output
    Attach(AttachArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Pause all processes within one or more containers
    Pause(Ids),
    /// Unpause all processes within one or more containers
    Unpause(Ids),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Return low-level information on containers, images or volumes
    Inspect(InspectArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container resource usage statistics
    Stats(StatsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(Ids),
    /// Rename a container
    Rename { container: String, new_name: String },
    /// Update the resource limits of one or more containers
    Update(UpdateArgs),
    /// List port mappings or a specific mapping for the container
    Port { container: String, port: Option<String> },
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Copy files between a container and the host
    Cp(CpArgs),
    /// Inspect changes to files on a container's filesystem
    Diff { container: String },
    /// Manage containers
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
    /// List images
    Images(ImagesArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag { source: String, target: String },
    /// Load images from a tar archive (docker-archive or oci-archive)
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Import a root filesystem tarball as an image
    Import(ImportArgs),
    /// Save images to a tar archive
    Save(SaveArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: VolumeCmd,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Manage skiff
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Display system-wide information
    Info(FormatArg),
    /// Show the skiff version information
    Version(FormatArg),
    /// Run by a container's monitor when the container exits (not for users)
    #[command(name = "container-cleanup", hide = true)]
    ContainerCleanup { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// List containers
    #[command(alias = "list", name = "ls")]
    Ls(PsArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    /// Remove one or more images
    Rm(RmiArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag { source: String, target: String },
    /// Show the history of an image
    History(HistoryArgs),
    /// Save images to a tar archive
    Save(SaveArgs),
    /// Load images from a tar archive
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Import a root filesystem tarball as an image
    Import(ImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate the output
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all unused networks
    Prune {
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network
    Connect {
        #[arg(long)]
        ip: Option<String>,
        #[arg(long)]
        ip6: Option<String>,
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    pub name: String,
    /// Driver to manage the network (bridge)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Gateway for the subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container IPs from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// Create a volume
    Create {
        name: Option<String>,
        #[arg(short = 'd', long, default_value = "local")]
        driver: String,
        #[arg(short = 'l', long = "label")]
        labels: Vec<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused volumes
    Prune(PruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Show disk usage
    Df(FormatArg),
    /// Remove unused data
    Prune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
        #[arg(long)]
        volumes: bool,
    },
    /// Display system-wide information
    Info(FormatArg),
}

#[derive(Debug, Args)]
pub struct FormatArg {
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[arg(short, long)]
    pub force: bool,
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct Ids {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Default)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[arg(long)]
    pub ulimit: Vec<String>,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Restart policy (no, on-failure[:max-retries], always, unless-stopped)
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Connect a container to a network (bridge, NAME, none, host, container:NAME|ID)
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Pull image before running (always, missing, never)
    #[arg(long)]
    pub pull: Option<String>,
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1.., value_name = "IMAGE [COMMAND] [ARG...]")]
    pub args: Vec<String>,
}

/// The resource flags of `run`, `create` and `update`.
#[derive(Debug, Args, Default)]
pub struct ResourceArgs {
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", allow_hyphen_values = true)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

impl ResourceArgs {
    pub fn request(&self) -> skiff_engine::options::Resources {
        skiff_engine::options::Resources {
            memory: self.memory.clone(),
            memory_swap: self.memory_swap.clone(),
            cpus: self.cpus.clone(),
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
        }
    }
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[arg(short, long)]
    pub attach: bool,
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct PsArgs {
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    #[arg(short = 'l', long)]
    pub latest: bool,
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    #[arg(short, long)]
    pub timestamps: bool,
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1.., value_name = "CONTAINER COMMAND [ARG...]")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout", allow_hyphen_values = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    #[arg(short, long)]
    pub all: bool,
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    #[arg(short, long)]
    pub message: Option<String>,
    #[arg(short, long)]
    pub author: Option<String>,
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    #[arg(short, long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(short, long)]
    pub output: Option<String>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    #[arg(short = 'a', long)]
    pub archive: bool,
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    pub src: String,
    pub dst: String,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(long)]
    pub digests: bool,
    #[arg(short, long)]
    pub filter: Vec<String>,
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[arg(short, long)]
    pub input: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    #[arg(short, long)]
    pub message: Option<String>,
    /// A tar file, or - for standard input
    pub file: String,
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[arg(short, long)]
    pub output: Option<String>,
    /// docker-archive (default) or oci-archive
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set)]
    pub human: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

/// How to reach a registry (podman's flags).
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Require HTTPS and verify certificates (--tls-verify=false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// A directory of CA certificates (*.crt) for the registry
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<std::path::PathBuf>,
    /// The credentials file (default ~/.config/skiff/auth.json; ~/.docker/config.json is read too)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Use USERNAME[:PASSWORD] for accessing the registry
    #[arg(long, value_name = "USERNAME:PASSWORD")]
    pub creds: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Manifest format: oci or v2s2 (default: the image's own)
    #[arg(short, long)]
    pub format: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Use USERNAME[:PASSWORD] for accessing the registry
    #[arg(long, value_name = "USERNAME:PASSWORD")]
    pub creds: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// NAME[:TAG]
    pub image: String,
    /// Push to this reference instead (podman's DESTINATION)
    pub destination: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The registry (default: Docker Hub)
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The credentials file
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<std::path::PathBuf>,
    /// The registry (default: Docker Hub)
    pub server: Option<String>,
}
