//! The json-file log, rotated at a size limit as Docker's `--log-opt max-size/max-file` do.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::jsonlog;

pub struct Log {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_file: u32,
    pending: [Vec<u8>; 2],
}

/// Opens the json-file log for appending, made (0640) if missing: by the engine before the
/// monitor runs (so it exists once `start` returns), and by the monitor.
pub fn create(path: &std::path::Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

const STREAMS: [&str; 2] = ["stdout", "stderr"];

impl Log {
    pub fn open(path: PathBuf, max_size: u64, max_file: u32) -> std::io::Result<Log> {
        let file = create(&path)?;
        let size = file.metadata()?.len();
        Ok(Log {
            path,
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output of stream 0 (stdout) or 1 (stderr); complete lines are written at once.
    pub fn add(&mut self, stream: usize, data: &[u8]) {
        self.pending[stream].extend_from_slice(data);
        let entries = jsonlog::split(&mut self.pending[stream]);
        if entries.is_empty() {
            return;
        }
        let time = crate::time::now();
        // Entries are batched into one write, but never across a rotation point.
        let mut text = String::new();
        for e in entries {
            let line = jsonlog::entry(STREAMS[stream], &e, &time);
            if self.max_size > 0 && !text.is_empty() && self.size + (text.len() + line.len()) as u64 > self.max_size {
                self.write(std::mem::take(&mut text).as_bytes());
            }
            text.push_str(&line);
        }
        self.write(text.as_bytes());
    }

    /// Writes what is left of unterminated lines (at exit).
    pub fn flush(&mut self) {
        let time = crate::time::now();
        for (stream, name) in STREAMS.iter().enumerate() {
            if !self.pending[stream].is_empty() {
                let tail = std::mem::take(&mut self.pending[stream]);
                self.write(jsonlog::entry(name, &tail, &time).as_bytes());
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.max_size > 0 && self.size > 0 && self.size + bytes.len() as u64 > self.max_size {
            self.rotate();
        }
        if self.file.write_all(bytes).is_ok() {
            self.size += bytes.len() as u64;
        }
    }

    /// `log` → `log.1` → ... → `log.<max_file-1>`; with one file, the log starts over.
    fn rotate(&mut self) {
        let name = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.max_file > 1 {
            for i in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
            if let Ok(f) = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .custom_flags(libc::O_CLOEXEC)
                .open(&self.path)
            {
                self.file = f;
            }
        } else {
            let _ = self.file.set_len(0);
        }
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_max_size_keeping_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = Log::open(path.clone(), 200, 3).unwrap();
        for i in 0..20 {
            log.add(0, format!("line {i}\n").as_bytes());
        }
        let cur = std::fs::read_to_string(&path).unwrap();
        let one = std::fs::read_to_string(dir.path().join("c-json.log.1")).unwrap();
        assert!(dir.path().join("c-json.log.2").exists());
        assert!(!dir.path().join("c-json.log.3").exists());
        assert!(cur.len() <= 200 && one.len() <= 200);
        assert!(cur.contains("line 19\\n"), "{cur}");
        assert!(!cur.contains("line 0\\n"));
    }

    #[test]
    fn partial_lines_wait_for_their_newline_or_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let mut log = Log::open(path.clone(), 0, 1).unwrap();
        log.add(1, b"hel");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        log.add(1, b"lo\nta");
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("{\"log\":\"hello\\n\",\"stream\":\"stderr\""));
        assert!(lines[1].starts_with("{\"log\":\"ta\",\"stream\":\"stderr\""));
    }
}
