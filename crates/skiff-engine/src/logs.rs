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

/// Hands each entry of the complete lines of `r`, from where it is, to `each`; returns the
/// bytes read.
/// A last line still being written (no newline yet) is left for the next read.
fn read_entries(r: &mut BufReader<&std::fs::File>, mut each: impl FnMut(Entry) -> std::io::Result<()>) -> std::io::Result<u64> {
    let mut used = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(used);
        }
        used += n as u64;
        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
            each(e)?;
        }
    }
}

fn inode(f: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    f.metadata().ok().map(|m| m.ino())
}

impl Engine {
    pub fn logs(&self, id: &str, opts: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
        let path = self.layout.container(id).log(id);
        let mut entries = Vec::new();
        // The current file stays open, and `-f` goes on from where this read ended: nothing
        // written in between is lost.
        let mut current: Option<(std::fs::File, u64)> = None;
        for f in files(&path) {
            let Ok(file) = std::fs::File::open(&f) else { continue };
            let used = read_entries(&mut BufReader::new(&file), |e| {
                entries.push(e);
                Ok(())
            })
            .map_err(|e| Error::io("read", &f, e))?;
            if f == path {
                current = Some((file, used));
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
        // Follow until the container stops: a rotated file is read to its end before the new
        // one is taken up from its start.
        loop {
            let running = self.load(id).map(|r| r.state.status.is_active()).unwrap_or(false);
            if let Some((file, pos)) = &mut current {
                file.seek(SeekFrom::Start(*pos)).map_err(|e| Error::io("seek", &path, e))?;
                *pos += read_entries(&mut BufReader::new(&*file), |e| {
                    emit(&e, opts, out, err)?;
                    out.flush()
                })
                .map_err(io)?;
            }
            let renewed = match std::fs::File::open(&path) {
                Ok(f) if current.as_ref().and_then(|(c, _)| inode(c)) != inode(&f) => Some(f),
                _ => None,
            };
            if let Some(f) = renewed {
                current = Some((f, 0));
                continue;
            }
            if !running {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
