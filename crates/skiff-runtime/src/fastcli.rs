//! A fast path for the command lines that container engines send on every container start:
//! `create`, `start`, `run`, `state`, `kill`, `delete` and `exec` with their usual flags.
//!
//! clap builds its whole command tree (every subcommand, every global flag copied into each
//! one) before it parses anything: about 200 KB of heap and a few hundred KB of code touched,
//! which is most of our peak RSS above the executable's own start path, and a good part of an
//! `exec`'s run time. This parser accepts a strict subset of the grammar and returns exactly
//! the [`Cli`] clap would (the tests compare the two on a corpus); on anything else (help,
//! unknown or repeated flags, `--`, clusters of short flags, values that look like flags,
//! non-UTF-8) it returns None and clap parses the command line as before, errors included.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command, CreateArgs, DeleteArgs, ExecArgs, Global, IdArg, KillArgs, LogFormat, Rootless, RunArgs};

/// The [`Cli`] for `args` (argv[0] first), or None to let clap parse it.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let args: Vec<&str> = args.iter().skip(1).map(|a| a.to_str()).collect::<Option<_>>()?;
    let mut p = Parser { args: &args, pos: 0, global: Global::default_values(), seen: Vec::new() };
    let sub = loop {
        let a = p.next()?;
        if a.starts_with('-') {
            if !p.global_flag(a)? {
                return None;
            }
        } else {
            break a;
        }
    };
    let command = match sub {
        "create" => Command::Create(p.create(false)?.0),
        "run" => {
            let (create, extra) = p.create(true)?;
            Command::Run(RunArgs { create, detach: extra.detach, keep: extra.keep, no_subreaper: extra.no_subreaper })
        }
        "start" | "state" | "delete" | "kill" => p.simple(sub)?,
        "exec" => Command::Exec(Box::new(p.exec()?)),
        _ => return None,
    };
    Some(Cli { version: false, global: p.global, command: Some(command) })
}

impl Global {
    fn default_values() -> Global {
        Global {
            root: None,
            log: None,
            log_format: LogFormat::Text,
            debug: false,
            systemd_cgroup: false,
            rootless: None,
            criu: None,
        }
    }
}

struct Parser<'a> {
    args: &'a [&'a str],
    pos: usize,
    global: Global,
    /// Flags given so far (a repeated single-valued flag is clap's to judge).
    seen: Vec<&'static str>,
}

#[derive(Default)]
struct RunExtra {
    detach: bool,
    keep: bool,
    no_subreaper: bool,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let a = self.args.get(self.pos).copied();
        self.pos += 1;
        a
    }

    /// Marks `name` seen; None (give up) if it was already.
    fn once(&mut self, name: &'static str) -> Option<()> {
        if self.seen.contains(&name) {
            return None;
        }
        self.seen.push(name);
        Some(())
    }

    /// `--flag VALUE` or `--flag=VALUE` (`inline`); a value that is empty or starts with '-'
    /// is left to clap.
    fn value(&mut self, name: &'static str, inline: Option<&'a str>) -> Option<&'a str> {
        self.once(name)?;
        let v = match inline {
            Some(v) => v,
            None => self.next()?,
        };
        (!v.is_empty() && !v.starts_with('-')).then_some(v)
    }

    /// A switch: no `=VALUE` allowed here.
    fn switch(&mut self, name: &'static str, inline: Option<&str>) -> Option<bool> {
        if inline.is_some() {
            return None;
        }
        self.once(name)?;
        Some(true)
    }

    /// A global flag: Some(true) if `a` is one and was taken, Some(false) if `a` is not a
    /// global flag, None to give up.
    fn global_flag(&mut self, a: &'a str) -> Option<bool> {
        let (flag, inline) = split(a);
        match flag {
            "--root" => self.global.root = Some(PathBuf::from(self.value("root", inline)?)),
            "--log" => self.global.log = Some(PathBuf::from(self.value("log", inline)?)),
            "--log-format" => {
                self.global.log_format = match self.value("log-format", inline)? {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return None,
                }
            }
            "--debug" => self.global.debug = self.switch("debug", inline)?,
            "--systemd-cgroup" => self.global.systemd_cgroup = self.switch("systemd-cgroup", inline)?,
            "--rootless" => {
                // Only the unambiguous `--rootless=VALUE`.
                self.once("rootless")?;
                self.global.rootless = Some(match inline? {
                    "true" => Rootless::True,
                    "false" => Rootless::False,
                    "auto" => Rootless::Auto,
                    _ => return None,
                });
            }
            _ => return Some(false),
        }
        Some(true)
    }

    /// `create` / `run`: flags anywhere, one positional (the id).
    fn create(&mut self, run: bool) -> Option<(CreateArgs, RunExtra)> {
        let mut c = CreateArgs {
            bundle: PathBuf::from("."),
            pid_file: None,
            console_socket: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            id: String::new(),
        };
        let mut extra = RunExtra::default();
        let mut id = None;
        while let Some(a) = self.next() {
            if !a.starts_with('-') {
                if id.replace(a).is_some() {
                    return None;
                }
                continue;
            }
            if self.global_flag(a)? {
                continue;
            }
            let (flag, inline) = split(a);
            match flag {
                "--bundle" | "-b" => c.bundle = PathBuf::from(self.value("bundle", inline)?),
                "--pid-file" => c.pid_file = Some(PathBuf::from(self.value("pid-file", inline)?)),
                "--console-socket" => c.console_socket = Some(PathBuf::from(self.value("console-socket", inline)?)),
                "--no-pivot" => c.no_pivot = self.switch("no-pivot", inline)?,
                "--no-new-keyring" => c.no_new_keyring = self.switch("no-new-keyring", inline)?,
                "--preserve-fds" => c.preserve_fds = self.value("preserve-fds", inline)?.parse().ok()?,
                "--detach" | "-d" if run => extra.detach = self.switch("detach", inline)?,
                "--keep" if run => extra.keep = self.switch("keep", inline)?,
                "--no-subreaper" if run => extra.no_subreaper = self.switch("no-subreaper", inline)?,
                _ => return None,
            }
        }
        c.id = id?.to_string();
        Some((c, extra))
    }

    /// `start`, `state`, `delete`, `kill`: flags anywhere, the id (and kill's signal).
    fn simple(&mut self, sub: &str) -> Option<Command> {
        let mut pos: Vec<&str> = Vec::new();
        let (mut force, mut all) = (false, false);
        while let Some(a) = self.next() {
            if !a.starts_with('-') {
                pos.push(a);
                continue;
            }
            if self.global_flag(a)? {
                continue;
            }
            let (flag, inline) = split(a);
            match (sub, flag) {
                ("delete", "--force" | "-f") => force = self.switch("force", inline)?,
                ("kill", "--all" | "-a") => all = self.switch("all", inline)?,
                _ => return None,
            }
        }
        let id = pos.first()?.to_string();
        Some(match (sub, pos.len()) {
            ("start", 1) => Command::Start(IdArg { id }),
            ("state", 1) => Command::State(IdArg { id }),
            ("delete", 1) => Command::Delete(DeleteArgs { force, id }),
            ("kill", 1 | 2) => {
                let signal = pos.get(1).unwrap_or(&"SIGTERM").to_string();
                Command::Kill(KillArgs { all, id, signal })
            }
            _ => return None,
        })
    }

    /// `exec`: flags before and after the id; the first positional after the id starts the
    /// command, which takes everything after it as is.
    fn exec(&mut self) -> Option<ExecArgs> {
        let mut e = ExecArgs {
            process: None,
            tty: false,
            env: Vec::new(),
            cwd: None,
            user: None,
            additional_gids: Vec::new(),
            caps: Vec::new(),
            no_new_privs: false,
            detach: false,
            pid_file: None,
            console_socket: None,
            preserve_fds: 0,
            apparmor: None,
            process_label: None,
            ignore_paused: false,
            cgroup: Vec::new(),
            id: String::new(),
            command: Vec::new(),
        };
        let mut id = None;
        while let Some(a) = self.next() {
            if !a.starts_with('-') {
                if id.is_none() {
                    id = Some(a);
                    continue;
                }
                e.command = self.args[self.pos - 1..].iter().map(|s| s.to_string()).collect();
                break;
            }
            if self.global_flag(a)? {
                continue;
            }
            let (flag, inline) = split(a);
            match flag {
                "--process" | "-p" => e.process = Some(PathBuf::from(self.value("process", inline)?)),
                "--tty" | "-t" => e.tty = self.switch("tty", inline)?,
                "--detach" | "-d" => e.detach = self.switch("detach", inline)?,
                "--pid-file" => e.pid_file = Some(PathBuf::from(self.value("pid-file", inline)?)),
                "--console-socket" => e.console_socket = Some(PathBuf::from(self.value("console-socket", inline)?)),
                "--cwd" => e.cwd = Some(PathBuf::from(self.value("cwd", inline)?)),
                "--user" | "-u" => e.user = Some(self.value("user", inline)?.to_string()),
                "--preserve-fds" => e.preserve_fds = self.value("preserve-fds", inline)?.parse().ok()?,
                "--no-new-privs" => e.no_new_privs = self.switch("no-new-privs", inline)?,
                "--ignore-paused" => e.ignore_paused = self.switch("ignore-paused", inline)?,
                "--env" | "-e" => {
                    // Repeatable: not `once`.
                    let v = match inline {
                        Some(v) => v,
                        None => self.next()?,
                    };
                    if v.is_empty() || v.starts_with('-') {
                        return None;
                    }
                    e.env.push(v.to_string());
                }
                _ => return None,
            }
        }
        e.id = id?.to_string();
        Some(e)
    }
}

/// `--flag=value` -> ("--flag", Some("value")); short flags (`-x`) never carry a value here:
/// `-x=...` and clusters are clap's.
fn split(a: &str) -> (&str, Option<&str>) {
    if a.starts_with("--") {
        match a.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (a, None),
        }
    } else if a.len() == 2 {
        (a, None)
    } else {
        ("", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(line: &[&str]) -> Vec<OsString> {
        std::iter::once("skiff-runtime").chain(line.iter().copied()).map(OsString::from).collect()
    }

    /// The fast path gives clap's answer, or leaves the line to clap.
    fn same_as_clap(line: &[&str]) -> bool {
        let args = os(line);
        let Some(fast) = parse(&args) else { return false };
        let clap = crate::cli::parse_from(args.clone()).unwrap_or_else(|e| panic!("{line:?}: fast path took a line clap refuses: {e}"));
        assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{line:?}");
        true
    }

    #[test]
    fn engine_command_lines_take_the_fast_path_and_match_clap() {
        let taken: &[&[&str]] = &[
            &["--root", "/r", "run", "--bundle", "/b", "c1"],
            &["--root=/r", "run", "-d", "-b", "/b", "c1"],
            &["run", "--bundle=/b", "--pid-file", "/p", "--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "--keep", "--no-subreaper", "c1"],
            &["--root", "/r", "--log", "/l/log.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"],
            &["--log-format=json", "--log=/l", "create", "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "c1"],
            &["create", "c1", "--bundle", "/b"],
            &["--debug", "--systemd-cgroup", "--rootless=false", "create", "-b", "/b", "c1"],
            &["create", "--root", "/r", "--bundle", "/b", "c1", "--debug"],
            &["--root", "/r", "start", "c1"],
            &["start", "c1", "--root", "/r"],
            &["state", "c1"],
            &["delete", "c1"],
            &["delete", "--force", "c1"],
            &["--root", "/r", "delete", "-f", "c1"],
            &["kill", "c1"],
            &["kill", "c1", "9"],
            &["kill", "--all", "c1", "KILL"],
            &["kill", "-a", "c1", "SIGTERM"],
            &["--root", "/r", "exec", "c1", "/bin/true"],
            &["exec", "c1", "sh", "-c", "echo hi", "--debug", "--", "-x"],
            &["exec", "-t", "c1", "sh"],
            &["exec", "--process", "/p.json", "--detach", "--pid-file", "/pid", "c1"],
            &["exec", "--pid-file", "/pid", "--process", "/p.json", "--detach", "--tty", "--console-socket", "/s", "c1"],
            &["exec", "c1", "--env", "A=1", "-e", "B=2", "--cwd", "/tmp", "-t", "ls", "-l"],
            &["exec", "--env=A=1", "-u", "1000:1000", "--no-new-privs", "--ignore-paused", "--preserve-fds=1", "c1", "id"],
            &["exec", "c1", "prog", "--rootless", "true"],
            &["--debug", "exec", "c1", "--root", "/r", "ls"],
            &["exec", "c1"],
        ];
        for line in taken {
            assert!(same_as_clap(line), "not taken: {line:?}");
        }
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        let left: &[&[&str]] = &[
            &[],
            &["--version"],
            &["-v"],
            &["--help"],
            &["run", "--help"],
            &["list"],
            &["ps", "c1"],
            &["spec"],
            &["--rootless", "true", "run", "c1"],
            &["--rootless", "run", "c1"],
            &["--rootless=maybe", "run", "c1"],
            &["--root", "/a", "--root", "/b", "state", "c1"],
            &["--root", "--debug", "state", "c1"],
            &["--log-format", "xml", "state", "c1"],
            &["--criu", "/c", "state", "c1"],
            &["run", "c1", "c2"],
            &["run"],
            &["run", "-df", "c1"],
            &["run", "--bogus", "c1"],
            &["run", "--preserve-fds", "x", "c1"],
            &["run", "--detach=true", "c1"],
            &["create", "-d", "c1"],
            &["create", "--", "c1"],
            &["start"],
            &["start", "c1", "c2"],
            &["delete", "-a", "c1"],
            &["kill", "c1", "9", "x"],
            &["exec", "-p"],
            &["exec", "--cap", "CAP_KILL", "c1", "ls"],
            &["exec", "-g", "10", "c1", "ls"],
            &["exec", "--", "c1", "ls"],
            &["exec", "c1", "-x", "ls"],
            &["exec", "-tc1", "ls"],
            &["exec", "-e=B=2", "c1", "ls"],
            &["exec", "--tty", "--tty", "c1", "ls"],
            &["exec", "-e", "-x", "c1", "ls"],
        ];
        for line in left {
            assert!(parse(&os(line)).is_none(), "taken: {line:?}");
        }
        // The clap answer (an error or another command) stays as it was.
        assert!(crate::cli::parse_from(os(&["run", "--bogus", "c1"])).is_err());
    }

    #[test]
    fn non_utf8_is_left_to_clap() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = os(&["state"]);
        args.push(OsString::from_vec(vec![0xff, 0xfe]));
        assert!(parse(&args).is_none());
    }
}
