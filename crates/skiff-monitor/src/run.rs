//! The monitor: the process that stays beside a container (podman's conmon is the model).
//!
//! The engine forks a child that creates and starts the container in-process (so the
//! container's init is that child's child) and then execs this binary, keeping its pid and its
//! child. From then on the monitor:
//! - reads the container's output (a pty master, or stdout and stderr pipes) and writes it to
//!   the json-file log, rotating it at `--log-max-size`;
//! - serves attach clients on `<dir>/attach.sock` (and the client the engine passed with
//!   `--client`): output to them, their input and terminal resizes to the container;
//! - reaps the init, records its exit status in `<dir>/exit.json`, tells the clients, and execs
//!   the exit command (the engine's cleanup: unmount, delete, `--rm`, restart policy), which
//!   inherits the clients so that a foreground `run` ends only once cleanup is done.
//!
//! Usage (the engine builds this line):
//! `skiff-monitor --dir DIR --pid PID --log FILE [--log-max-size N] [--log-max-file N]
//!  [--pty FD | --stdout FD --stderr FD [--stdin FD]] [--client FD] -- EXIT-COMMAND...`

use std::path::PathBuf;
use std::process::ExitCode;

/// The monitor's command line.
#[derive(Debug, Default)]
pub struct Args {
    pub dir: PathBuf,
    pub pid: i32,
    pub log: PathBuf,
    pub log_max_size: u64,
    pub log_max_file: u32,
    pub pty: Option<i32>,
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    pub stderr: Option<i32>,
    pub client: Option<i32>,
    pub exit_command: Vec<String>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        log_max_file: 1,
        ..Args::default()
    };
    while let Some(flag) = argv.next() {
        if flag == "--" {
            a.exit_command = argv.collect();
            break;
        }
        let val = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let fd = || val.parse::<i32>().map_err(|_| format!("{flag}: not a number: {val}"));
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(&val),
            "--pid" => a.pid = fd()?,
            "--log" => a.log = PathBuf::from(&val),
            "--log-max-size" => a.log_max_size = val.parse().map_err(|_| format!("{flag}: not a number: {val}"))?,
            "--log-max-file" => a.log_max_file = val.parse().map_err(|_| format!("{flag}: not a number: {val}"))?,
            "--pty" => a.pty = Some(fd()?),
            "--stdin" => a.stdin = Some(fd()?),
            "--stdout" => a.stdout = Some(fd()?),
            "--stderr" => a.stderr = Some(fd()?),
            "--client" => a.client = Some(fd()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.pid <= 0 || a.dir.as_os_str().is_empty() || a.log.as_os_str().is_empty() {
        return Err("--dir, --pid and --log are required".into());
    }
    Ok(a)
}

/// The `skiff-monitor` binary's main.
pub fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("skiff-monitor: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::server::run(&args) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("skiff-monitor: {e}");
            ExitCode::from(1)
        }
    }
}
