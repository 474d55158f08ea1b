//! The command line, as clap types. It follows runc's: the same subcommands, flags and short
//! forms; `--flag value` and `--flag=value`; options before or after the container id; global
//! options before or after the subcommand.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// The state root when `--root` is not given.
pub const DEFAULT_ROOT: &str = "/run/skiff";

#[derive(Debug, Parser)]
#[command(
    name = "skiff-runtime",
    about = "skiff: an OCI container runtime (runc-compatible command line)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (runc's three-line layout)
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,

    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Root directory for container state (default /run/skiff; $XDG_RUNTIME_DIR/skiff when
    /// not root)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Also write log messages (and the final error) to FILE
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Log format
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,

    /// Use systemd to manage cgroups
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,

    /// Rootless mode (bare --rootless means true)
    #[arg(
        long,
        global = true,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "true|false|auto"
    )]
    pub rootless: Option<Rootless>,

    /// Path to criu, for checkpoint and restore (default: $SKIFF_CRIU, else `criu` from PATH)
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    True,
    False,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (it waits for `start`)
    Create(CreateArgs),
    /// Start a created container
    Start(IdArg),
    /// Create and start a container, wait for it, delete it
    Run(RunArgs),
    /// Print the state of a container as JSON
    State(IdArg),
    /// Send a signal to the container's init (or all its processes)
    Kill(KillArgs),
    /// Delete a container and its resources
    Delete(DeleteArgs),
    /// List containers
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show the processes of a container
    Ps(PsArgs),
    /// Write a default config.json
    Spec(SpecArgs),
    /// Print the runtime's features as JSON
    Features,
    /// Run a new process in a running container
    Exec(Box<ExecArgs>),
    /// Suspend all processes of a container
    Pause(IdArg),
    /// Resume a paused container
    Resume(IdArg),
    /// Update a container's resource limits
    Update(Box<UpdateArgs>),
    /// Show container events: stats every interval and OOM notifications
    Events(EventsArgs),
    /// Checkpoint a running container with criu
    Checkpoint(Box<CheckpointArgs>),
    /// Restore a container from a checkpoint
    Restore(Box<RestoreArgs>),
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Container id
    pub id: String,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json)
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's init pid to FILE
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master fd to
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Do not use pivot_root (move + chroot instead)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N) to the container
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container is started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Do not become a subreaper (accepted, no effect)
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal all processes of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Stats collection interval (Go-style duration: 5s, 500ms, 1m)
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    /// Container id
    pub id: String,
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is running
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the container ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Container id
    pub id: String,
    /// Arguments for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PS_ARGS")]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Directory to write config.json into
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    // `--rootless` is the global flag: `spec --rootless` sets it.
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Process JSON file to run (instead of COMMAND)
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable (repeatable)
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// User: UID[:GID]
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids (repeatable)
    #[arg(short = 'g', long = "additional-gids", value_name = "GID", value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub caps: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Do not wait for the process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid to FILE
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master fd to
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Pass N extra fds (3 .. 3+N) to the process
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// AppArmor profile
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux label
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Exec even when the container is paused
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Sub-cgroup to join (accepted, not used yet)
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<String>,
    /// Container id
    pub id: String,
    /// Command and arguments (everything after the first one is passed as is)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `update`: runc's flags. Memory sizes take runc's suffixes (`512k`, `64m`, `1g`, `-1`).
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// JSON file with a linux.resources object ("-" for stdin); the flags below override it
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1: no limit)
    #[arg(long = "cpu-quota", value_name = "US", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst in microseconds
    #[arg(long = "cpu-burst", value_name = "US")]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", value_name = "N")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "US", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to allow (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to allow (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated, ignored)
    #[arg(long = "kernel-memory", value_name = "SIZE", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit (deprecated, ignored)
    #[arg(long = "kernel-memory-tcp", value_name = "SIZE", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); -1 for unlimited swap
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1: no limit)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported)
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    /// Container id
    pub id: String,
}

/// What `checkpoint` and `restore` share (runc's flags; a flag given twice counts once, as
/// podman 4.3 may pass `--leave-running` twice).
#[derive(Debug, Args)]
pub struct CriuArgs {
    /// Directory of the criu images (default: ./checkpoint)
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Directory for criu's work files and log (default: the image directory)
    #[arg(long = "work-path", value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established", overrides_with = "tcp_established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk", overrides_with = "ext_unix_sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job", overrides_with = "shell_job")]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks", overrides_with = "file_locks")]
    pub file_locks: bool,
    /// cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace but do not restore its properties (not supported)
    #[arg(long = "empty-ns", value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images (not supported)
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Restore memory lazily (not supported)
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Images of a previous pre-dump, relative to the image path (e.g. ../pre)
    #[arg(long = "parent-path", value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running", overrides_with = "leave_running")]
    pub leave_running: bool,
    /// Dump memory only; the container keeps running
    #[arg(long = "pre-dump", overrides_with = "pre_dump")]
    pub pre_dump: bool,
    /// Page server ADDRESS:PORT (not supported)
    #[arg(long = "page-server", value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// FD for criu's lazy-pages readiness (not supported)
    #[arg(long = "status-fd", value_name = "FD")]
    pub status_fd: Option<String>,
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Bundle directory (holds config.json)
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored
    #[arg(short = 'd', long, overrides_with = "detach")]
    pub detach: bool,
    /// Write the restored init's pid to FILE
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master fd to (terminals: not supported yet)
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Do not become a subreaper (accepted, no effect)
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Do not use pivot_root (accepted, no effect: criu restores the mounts)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// LSM profile for the restored process (not supported)
    #[arg(long = "lsm-profile", value_name = "PROFILE")]
    pub lsm_profile: Option<String>,
    /// LSM mount context (not supported)
    #[arg(long = "lsm-mount-context", value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    /// Container id
    pub id: String,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create(_) => "create",
            Command::Start(_) => "start",
            Command::Run(_) => "run",
            Command::State(_) => "state",
            Command::Kill(_) => "kill",
            Command::Delete(_) => "delete",
            Command::List(_) => "list",
            Command::Ps(_) => "ps",
            Command::Spec(_) => "spec",
            Command::Features => "features",
            Command::Exec(_) => "exec",
            Command::Pause(_) => "pause",
            Command::Resume(_) => "resume",
            Command::Update(_) => "update",
            Command::Events(_) => "events",
            Command::Checkpoint(_) => "checkpoint",
            Command::Restore(_) => "restore",
        }
    }
}

/// Global flags that take a value in the next argument.
const GLOBAL_VALUE_FLAGS: &[&str] = &["--root", "--log", "--log-format", "--criu"];
/// Subcommands whose trailing arguments belong to someone else (the exec'd command, ps).
const TRAILING_SUBCOMMANDS: &[&str] = &["exec", "ps"];

/// `--rootless` takes an optional value; clap can only tell `--rootless true` from
/// `--rootless <subcommand or id>` if the value is attached. Rewrites `--rootless X` (X one of
/// true/false/auto) into `--rootless=X` where it is unambiguous: before the subcommand, and
/// after it except within exec's COMMAND or ps's PS_ARGS (there, only before the first
/// positional) and after `--`.
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut sub: Option<String> = None;
    let mut stop = false;
    let mut it = args.into_iter().peekable();
    if let Some(argv0) = it.next() {
        out.push(argv0);
    }
    while let Some(arg) = it.next() {
        if stop {
            out.push(arg);
            continue;
        }
        let s = arg.to_str().unwrap_or("");
        if s == "--" {
            stop = true;
        } else if s == "--rootless" {
            let next = it.peek().and_then(|n| n.to_str());
            if let Some(v @ ("true" | "false" | "auto")) = next {
                out.push(OsString::from(format!("--rootless={v}")));
                it.next();
                continue;
            }
        } else if sub.is_none() && GLOBAL_VALUE_FLAGS.contains(&s) {
            out.push(arg);
            if let Some(v) = it.next() {
                out.push(v);
            }
            continue;
        } else if !s.starts_with('-') {
            match &sub {
                None => sub = Some(s.to_string()),
                Some(name) if TRAILING_SUBCOMMANDS.contains(&name.as_str()) => stop = true,
                Some(_) => {}
            }
        }
        out.push(arg);
    }
    out
}

/// Parses a command line (argv[0] first) after [`normalize_args`].
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    Cli::try_parse_from(normalize_args(args.into_iter().map(Into::into).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::path::Path;

    fn parse(line: &str) -> Cli {
        let args = std::iter::once("skiff-runtime").chain(line.split_whitespace());
        match parse_from(args) {
            Ok(c) => c,
            Err(e) => panic!("{line}: {e}"),
        }
    }

    fn parse_args(args: &[&str]) -> Cli {
        parse_from(std::iter::once("skiff-runtime").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn space_and_equals_forms() {
        for line in [
            "create --bundle /b --pid-file /p c1",
            "create --bundle=/b --pid-file=/p c1",
            "create -b /b --pid-file /p c1",
            "create c1 --bundle /b --pid-file=/p",
            "create -b=/b c1 --pid-file /p",
        ] {
            let cli = parse(line);
            let Some(Command::Create(a)) = cli.command else { panic!("{line}") };
            assert_eq!(a.id, "c1", "{line}");
            assert_eq!(a.bundle, PathBuf::from("/b"), "{line}");
            assert_eq!(a.pid_file, Some(PathBuf::from("/p")), "{line}");
        }
        let Some(Command::Create(a)) = parse("create x").command else { panic!() };
        assert_eq!(a.bundle, PathBuf::from("."));
        assert_eq!(a.preserve_fds, 0);
        let Some(Command::Create(a)) =
            parse("create --console-socket /s --no-pivot --no-new-keyring --preserve-fds 2 x").command
        else {
            panic!()
        };
        assert!(a.no_pivot && a.no_new_keyring);
        assert_eq!(a.preserve_fds, 2);
        assert_eq!(a.console_socket, Some(PathBuf::from("/s")));
    }

    #[test]
    fn global_flags_before_or_after_subcommand() {
        for line in [
            "--root /r --log /l --log-format json --debug --systemd-cgroup state c",
            "state --root /r --log /l --log-format json --debug --systemd-cgroup c",
            "state c --root=/r --log=/l --log-format=json --debug --systemd-cgroup",
            "--root=/r state --log /l c --log-format json --debug --systemd-cgroup",
        ] {
            let cli = parse(line);
            let g = &cli.global;
            assert_eq!(g.root, Some(PathBuf::from("/r")), "{line}");
            assert_eq!(g.log, Some(PathBuf::from("/l")), "{line}");
            assert_eq!(g.log_format, LogFormat::Json, "{line}");
            assert!(g.debug && g.systemd_cgroup, "{line}");
            let Some(Command::State(a)) = cli.command else { panic!("{line}") };
            assert_eq!(a.id, "c");
        }
        let cli = parse("list");
        assert_eq!(cli.global.root, None);
        assert_eq!(cli.global.log_format, LogFormat::Text);
        assert!(!cli.global.debug);
    }

    #[test]
    fn rootless_value_is_optional() {
        assert_eq!(parse("--rootless list").global.rootless, Some(Rootless::True));
        assert_eq!(parse("--rootless false list").global.rootless, Some(Rootless::False));
        assert_eq!(parse("--rootless=auto list").global.rootless, Some(Rootless::Auto));
        assert_eq!(parse("list --rootless").global.rootless, Some(Rootless::True));
        assert_eq!(parse("kill --rootless true c").global.rootless, Some(Rootless::True));
        assert_eq!(parse("list").global.rootless, None);
        assert!(matches!(parse("--rootless start c").command, Some(Command::Start(_))));
        let cli = parse("spec --rootless -b /x");
        assert_eq!(cli.global.rootless, Some(Rootless::True));
        let Some(Command::Spec(a)) = cli.command else { panic!() };
        assert_eq!(a.bundle, Some(PathBuf::from("/x")));
        // --criu is accepted
        assert_eq!(parse("--criu /usr/bin/criu list").global.criu, Some(PathBuf::from("/usr/bin/criu")));
    }

    #[test]
    fn version_flag() {
        assert!(parse("--version").version);
        assert!(parse("-v").version);
        assert!(parse("-v").command.is_none());
    }

    #[test]
    fn exec_trailing_args_are_not_parsed() {
        let cli = parse_args(&["exec", "-t", "c1", "sh", "-c", "echo hi", "--debug"]);
        let Some(Command::Exec(a)) = cli.command else { panic!() };
        assert!(a.tty);
        assert_eq!(a.id, "c1");
        assert_eq!(a.command, vec!["sh", "-c", "echo hi", "--debug"]);
        assert!(!cli.global.debug);

        // Options after the id, before the command.
        let cli =
            parse_args(&["exec", "c1", "--env", "A=1", "-e", "B=2", "--cwd", "/tmp", "-t", "ls", "-l", "--", "-x"]);
        let Some(Command::Exec(a)) = cli.command else { panic!() };
        assert_eq!(a.env, vec!["A=1", "B=2"], "{a:?}");
        assert_eq!(a.cwd, Some(PathBuf::from("/tmp")));
        assert!(a.tty);
        assert_eq!(a.command, vec!["ls", "-l", "--", "-x"]);
        // `-e=V` works before the id (after it, clap cannot tell it from a command).
        let cli = parse_args(&["exec", "-e=B=2", "c1", "ls"]);
        let Some(Command::Exec(a)) = cli.command else { panic!() };
        assert_eq!(a.env, vec!["B=2"]);

        // --rootless inside the command is left alone.
        let cli = parse_args(&["exec", "c1", "prog", "--rootless", "true"]);
        let Some(Command::Exec(a)) = cli.command else { panic!() };
        assert_eq!(a.command, vec!["prog", "--rootless", "true"]);
        assert_eq!(cli.global.rootless, None);

        let cli = parse_args(&[
            "--root",
            "/r",
            "exec",
            "-u",
            "1000:1000",
            "-g",
            "10",
            "-g=11",
            "--cap",
            "CAP_SYS_ADMIN",
            "-c",
            "CAP_NET_RAW",
            "--no-new-privs",
            "-d",
            "--pid-file",
            "/p",
            "--console-socket=/s",
            "--preserve-fds",
            "1",
            "--apparmor",
            "prof",
            "--process-label",
            "lbl",
            "--ignore-paused",
            "--cgroup",
            "sub",
            "c1",
            "true",
        ]);
        let Some(Command::Exec(a)) = cli.command else { panic!() };
        assert_eq!(a.user.as_deref(), Some("1000:1000"));
        assert_eq!(a.additional_gids, vec![10, 11]);
        assert_eq!(a.caps, vec!["CAP_SYS_ADMIN", "CAP_NET_RAW"]);
        assert!(a.no_new_privs && a.detach && a.ignore_paused);
        assert_eq!(a.preserve_fds, 1);
        assert_eq!(a.console_socket, Some(PathBuf::from("/s")));
        assert_eq!(a.command, vec!["true"]);

        let cli = parse_args(&["exec", "--process", "/p.json", "c1"]);
        let Some(Command::Exec(a)) = cli.command else { panic!() };
        assert_eq!(a.process, Some(PathBuf::from("/p.json")));
        assert!(a.command.is_empty());
    }

    #[test]
    fn kill_delete_list_ps() {
        let Some(Command::Kill(a)) = parse("kill c1").command else { panic!() };
        assert_eq!((a.id.as_str(), a.signal.as_str(), a.all), ("c1", "SIGTERM", false));
        let Some(Command::Kill(a)) = parse("kill -a c1 KILL").command else { panic!() };
        assert_eq!((a.signal.as_str(), a.all), ("KILL", true));
        let Some(Command::Kill(a)) = parse("kill c1 9 --all").command else { panic!() };
        assert_eq!((a.signal.as_str(), a.all), ("9", true));

        let Some(Command::Delete(a)) = parse("delete c1 -f").command else { panic!() };
        assert!(a.force);
        let Some(Command::Delete(a)) = parse("delete --force c1").command else { panic!() };
        assert!(a.force);

        let Some(Command::List(a)) = parse("ls -q").command else { panic!() };
        assert!(a.quiet);
        let Some(Command::List(a)) = parse("list --format=json").command else { panic!() };
        assert_eq!(a.format, Format::Json);
        let Some(Command::List(a)) = parse("list -f json").command else { panic!() };
        assert_eq!(a.format, Format::Json);

        let Some(Command::Ps(a)) = parse("ps -f json c1").command else { panic!() };
        assert_eq!((a.id.as_str(), a.format), ("c1", Format::Json));
        let Some(Command::Ps(a)) = parse("ps c1 -o pid,comm -e").command else { panic!() };
        assert_eq!(a.ps_args, vec!["-o", "pid,comm", "-e"]);
        assert_eq!(a.format, Format::Table);
    }

    #[test]
    fn run_flags() {
        let Some(Command::Run(a)) = parse("run -d --bundle /b c1 --no-subreaper").command else { panic!() };
        assert!(a.detach && a.no_subreaper && !a.keep);
        assert_eq!(a.create.bundle, PathBuf::from("/b"));
        assert_eq!(a.create.id, "c1");
    }

    #[test]
    fn checkpoint_and_restore_flags() {
        // podman 4.3's line: --leave-running may come twice.
        let cli = parse("checkpoint --image-path /i --work-path /w --leave-running --tcp-established --file-locks --leave-running c1");
        let Some(Command::Checkpoint(a)) = cli.command else { panic!() };
        assert_eq!((a.id.as_str(), a.criu.image_path.as_deref(), a.criu.work_path.as_deref()), ("c1", Some(Path::new("/i")), Some(Path::new("/w"))));
        assert!(a.leave_running && a.criu.tcp_established && a.criu.file_locks && !a.pre_dump);
        let cli = parse("--criu /c checkpoint --pre-dump --parent-path ../p --manage-cgroups-mode=full c1");
        assert_eq!(cli.global.criu, Some(PathBuf::from("/c")));
        let Some(Command::Checkpoint(a)) = cli.command else { panic!() };
        assert!(a.pre_dump && !a.leave_running);
        assert_eq!((a.parent_path.as_deref(), a.criu.manage_cgroups_mode.as_deref()), (Some(Path::new("../p")), Some("full")));
        // conmon's line.
        let cli = parse("restore --bundle /b --pid-file /p --detach --image-path /i --work-path /b c1");
        let Some(Command::Restore(a)) = cli.command else { panic!() };
        assert!(a.detach);
        assert_eq!((a.id.as_str(), a.bundle.as_path(), a.pid_file.as_deref()), ("c1", Path::new("/b"), Some(Path::new("/p"))));
        let Some(Command::Restore(a)) = parse("restore -d -b /b --console-socket /s c1").command else { panic!() };
        assert_eq!(a.console_socket, Some(PathBuf::from("/s")));
        assert!(parse_from(["skiff-runtime", "checkpoint"]).is_err());
    }

    #[test]
    fn events_pause_resume_args() {
        let Some(Command::Events(a)) = parse("events c1").command else { panic!() };
        assert_eq!((a.id.as_str(), a.stats, a.interval), ("c1", false, std::time::Duration::from_secs(5)));
        let Some(Command::Events(a)) = parse("events --stats --interval 250ms c1").command else { panic!() };
        assert_eq!((a.id.as_str(), a.stats, a.interval), ("c1", true, std::time::Duration::from_millis(250)));
        assert!(parse_from(["skiff-runtime", "events", "--interval", "soon", "c1"]).is_err());
        let Some(Command::Pause(a)) = parse("pause c1").command else { panic!() };
        assert_eq!(a.id, "c1");
        let Some(Command::Resume(a)) = parse("resume c1").command else { panic!() };
        assert_eq!(a.id, "c1");
    }

    #[test]
    fn missing_id_is_a_usage_error() {
        assert!(parse_from(["skiff-runtime", "start"]).is_err());
        assert!(parse_from(["skiff-runtime", "create", "-b", "/x"]).is_err());
        assert!(parse_from(["skiff-runtime", "list", "--format", "yaml"]).is_err());
    }
}
