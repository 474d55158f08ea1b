//! Pull and push progress as Docker shows it: a bar per layer on a terminal (bytes, speed,
//! ETA), plain status lines otherwise, nothing with `-q`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use skiff_registry::Progress;

/// Where progress goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

/// Plain lines, one per state change (what Docker prints when output is not a terminal).
pub struct Lines {
    out: Out,
    seen: Mutex<HashMap<String, u64>>,
}

impl Lines {
    pub fn new(out: Out) -> Lines {
        Lines {
            out,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, s: &str) {
        let _ = match self.out {
            Out::Stdout => writeln!(std::io::stdout().lock(), "{s}"),
            Out::Stderr => writeln!(std::io::stderr().lock(), "{s}"),
        };
    }
}

impl Progress for Lines {
    fn message(&self, msg: &str) {
        self.line(msg);
    }
    fn layer_queued(&self, id: &str, size: u64) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), size);
        self.line(&format!("{id}: Pulling fs layer"));
    }
    fn layer_pushing(&self, id: &str, _size: u64) {
        self.line(&format!("{id}: Pushing"));
    }
    fn layer_exists(&self, id: &str) {
        self.line(&format!("{id}: Already exists"));
    }
    fn layer_retry(&self, id: &str, attempt: u32, error: &str) {
        self.line(&format!("{id}: Retrying (attempt {attempt}): {error}"));
    }
    fn layer_done(&self, id: &str, verb: &str) {
        self.line(&format!("{id}: {verb}"));
    }
}

/// indicatif bars, one per layer.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new(out: Out) -> Bars {
        let target = match out {
            Out::Stdout => ProgressDrawTarget::stdout(),
            Out::Stderr => ProgressDrawTarget::stderr(),
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, id: &str, size: u64) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(id.to_string())
            .or_insert_with(|| {
                let style = ProgressStyle::with_template("{prefix}: {msg:<16} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                let b = self.multi.add(ProgressBar::new(size).with_style(style).with_prefix(id.to_string()));
                b.set_message("Waiting");
                b
            })
            .clone()
    }

    fn finish_with(&self, id: &str, msg: String) {
        let b = self.bar(id, 0);
        b.set_style(ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
        b.finish_with_message(msg);
    }
}

impl Progress for Bars {
    fn message(&self, msg: &str) {
        let _ = self.multi.println(msg);
    }
    fn layer_queued(&self, id: &str, size: u64) {
        self.bar(id, size);
    }
    fn layer_exists(&self, id: &str) {
        self.finish_with(id, "Already exists".into());
    }
    fn layer_progress(&self, id: &str, done: u64) {
        let b = self.bar(id, 0);
        if b.position() == 0 && done > 0 {
            b.set_message("Downloading");
        }
        b.set_position(done);
    }
    fn layer_retry(&self, id: &str, attempt: u32, error: &str) {
        self.bar(id, 0).set_message(format!("Retrying ({attempt})"));
        let _ = self.multi.println(format!("{id}: {error}"));
    }
    fn layer_done(&self, id: &str, verb: &str) {
        self.finish_with(id, verb.to_string());
    }
}

/// The progress reporter for output to `out`: none when quiet, bars on a terminal, lines
/// otherwise.
pub fn reporter(quiet: bool, out: Out) -> Box<dyn Progress + Send> {
    let fd = if out == Out::Stdout { 1 } else { 2 };
    if quiet {
        Box::new(skiff_registry::Silent)
    } else if crate::cmd::run_is_tty(fd) {
        Box::new(Bars::new(out))
    } else {
        Box::new(Lines::new(out))
    }
}
