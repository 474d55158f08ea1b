//! `skiff-runtime`: the runc-compatible command line of skiff.
//!
//! Thin by design: parse the command line ([`cli`]), set up logging ([`logging`]), call the
//! `skiff_core` library ([`commands`]), and turn the result into output and an exit status.

mod cli;
mod commands;
mod fastcli;
mod json;
mod logging;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::CommandFactory;

/// `--version`: runc's layout, three lines.
fn version_text() -> String {
    format!(
        "skiff-runtime version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("SKIFF_COMMIT"),
        skiff_core::spec::OCI_VERSION
    )
}

fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

fn main() {
    skiff_core::process::abort_on_panic();
    let args: Vec<OsString> = std::env::args_os().collect();
    // The usual engine command lines skip clap (see fastcli); clap parses everything else.
    let cli = match fastcli::parse(&args).map(Ok).unwrap_or_else(|| cli::parse_from(args.clone())) {
        Ok(cli) => cli,
        Err(e) => usage_error(e, &args),
    };
    if cli.version {
        print!("{}", version_text());
        exit(0);
    }
    let Some(command) = cli.command else {
        let _ = cli::Cli::command().print_help();
        exit(0);
    };
    let g = &cli.global;
    let to_file = match logging::init(g.log.as_deref(), g.log_format, g.debug) {
        Ok(to_file) => to_file,
        Err(e) => {
            eprintln!("{e:#}");
            exit(1);
        }
    };
    if g.debug {
        // Phases are timed from here: command line parsed, logging set up.
        skiff_core::timing::enable();
    }
    tracing::debug!(args = ?args, "skiff-runtime {}", command.name());
    match commands::run(g, command) {
        Ok(code) => exit(code),
        Err(e) => {
            // Without --log the log line itself goes to stderr; with it, stderr gets the bare
            // message (as runc does).
            tracing::error!("{e:#}");
            if to_file {
                eprintln!("{e:#}");
            }
            exit(1);
        }
    }
}

/// A command line clap refused: help and version displays succeed, anything else is printed,
/// logged to `--log` if we can find it, and exits 1 (runc's usage error status).
fn usage_error(e: clap::Error, args: &[OsString]) -> ! {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            exit(0);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            exit(1);
        }
        _ => {}
    }
    let _ = e.print();
    let (log, format) = scan_log_flags(args);
    if let Some(log) = log {
        if logging::init(Some(&log), format, false).is_ok() {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            tracing::error!("{}", first.strip_prefix("error: ").unwrap_or(first));
        }
    }
    exit(1)
}

/// Finds `--log` and `--log-format` in a command line clap could not parse.
fn scan_log_flags(args: &[OsString]) -> (Option<PathBuf>, cli::LogFormat) {
    let mut log = None;
    let mut format = cli::LogFormat::Text;
    let mut it = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (a, None),
        };
        if flag != "--log" && flag != "--log-format" {
            continue;
        }
        let Some(v) = inline.or_else(|| it.next()) else { break };
        if flag == "--log" {
            log = Some(PathBuf::from(v));
        } else if v == "json" {
            format = cli::LogFormat::Json;
        }
    }
    (log, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_has_three_lines() {
        let v = version_text();
        let lines: Vec<_> = v.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], format!("skiff-runtime version {}", env!("CARGO_PKG_VERSION")));
        assert!(lines[1].starts_with("commit: "));
        assert_eq!(lines[2], "spec: 1.2.0");
    }

    #[test]
    fn finds_log_flags_in_bad_command_lines() {
        let args: Vec<OsString> =
            ["x", "--log", "/l", "bogus", "--log-format=json"].iter().map(OsString::from).collect();
        assert_eq!(scan_log_flags(&args), (Some(PathBuf::from("/l")), cli::LogFormat::Json));
        let args: Vec<OsString> = ["x", "--log=/m", "bogus"].iter().map(OsString::from).collect();
        assert_eq!(scan_log_flags(&args), (Some(PathBuf::from("/m")), cli::LogFormat::Text));
    }
}
