//! `logs`: reading the json-file log back (rotated files oldest first), with `--tail`,
//! `--since`, `--timestamps` and `--follow`.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::Engine;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail: Option<usize>,
    pub timestamps: bool,
    /// Only entries at or after this time (seconds since the epoch).
    pub since: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// The log files of a container, oldest first.
fn files(log: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for i in 1.. {
        let mut p = log.as_os_str().to_owned();
        p.push(format!(".{i}"));
        let p = PathBuf::from(p);
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    rotated.reverse();
    rotated.push(log.to_path_buf());
    rotated
}

/// `--since`: RFC 3339, a Unix time, or a duration back from now (`10m`, `1h30m`).
pub fn parse_since(s: &str) -> Result<i64> {
    if let Some((secs, _)) = skiff_monitor::time::parse_rfc3339(s) {
        return Ok(secs);
    }
    if let Ok(n) = s.parse::<f64>() {
        return Ok(n as i64);
    }
    let d = humantime::parse_duration(s).map_err(|_| Error::Invalid(format!("invalid value for \"since\": {s}")))?;
    Ok(skiff_monitor::time::now_parts().0 - d.as_secs() as i64)
}

fn emit(e: &Entry, opts: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<()> {
    if let Some(since) = opts.since {
        if skiff_monitor::time::parse_rfc3339(&e.time).is_some_and(|(s, _)| s < since) {
            return Ok(());
        }
    }
    let w: &mut dyn Write = if e.stream == "stderr" { err } else { out };
    if opts.timestamps {
        write!(w, "{} ", e.time)?;
    }
    w.write_all(e.log.as_bytes())
}

impl Engine {
    pub fn logs(&self, id: &str, opts: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
        let path = self.layout.container(id).log(id);
        let mut entries = Vec::new();
        for f in files(&path) {
            let Ok(file) = std::fs::File::open(&f) else { continue };
            for line in BufReader::new(file).lines().map_while(std::result::Result::ok) {
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    entries.push(e);
                }
            }
        }
        let skip = opts.tail.map_or(0, |t| entries.len().saturating_sub(t));
        let io = |e: std::io::Error| Error::io("write", "stdout", e);
        for e in &entries[skip..] {
            emit(e, opts, out, err).map_err(io)?;
        }
        out.flush().map_err(io)?;
        if !opts.follow {
            return Ok(());
        }
        // Follow the current file from its end until the container stops.
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(_) => return Ok(()),
        };
        let mut pos = file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", &path, e))?;
        let mut partial = String::new();
        loop {
            let running = self.load(id).map(|r| r.state.status.is_active()).unwrap_or(false);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len < pos {
                // Rotated: start over on the new file.
                file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(_) => return Ok(()),
                };
                pos = 0;
            }
            file.seek(SeekFrom::Start(pos)).map_err(|e| Error::io("seek", &path, e))?;
            let mut r = BufReader::new(&file);
            loop {
                let mut line = String::new();
                let n = r.read_line(&mut line).map_err(|e| Error::io("read", &path, e))?;
                if n == 0 {
                    break;
                }
                pos += n as u64;
                partial.push_str(&line);
                if partial.ends_with('\n') {
                    if let Ok(e) = serde_json::from_str::<Entry>(&partial) {
                        emit(&e, opts, out, err).map_err(io)?;
                        out.flush().map_err(io)?;
                    }
                    partial.clear();
                }
            }
            if !running {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
