//! `skiff`: a daemonless, Docker-like container engine. A thin command line over
//! `skiff-engine` (containers, volumes) and `skiff-image` (images).

mod cli;
mod cmd;
mod log;
mod table;
mod template;

use clap::Parser;

/// An error with the exit status Docker gives it.
pub struct Failure {
    pub code: i32,
    pub msg: String,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        let e: anyhow::Error = e.into();
        let code = e.downcast_ref::<skiff_engine::Error>().map_or(125, skiff_engine::Error::exit_code);
        Failure { code, msg: format!("{e:#}") }
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

/// A failure with Docker's status for commands other than run/create/start/exec (1).
pub fn fail(msg: impl Into<String>) -> Failure {
    Failure { code: 1, msg: msg.into() }
}

fn main() {
    skiff_core::process::abort_on_panic();
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if cli.debug {
        log::init();
    }
    let code = match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("Error: {}", f.msg);
            f.code
        }
    };
    std::process::exit(code);
}
