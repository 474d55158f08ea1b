//! Logging as runc does it: one line per event, in logrus's text style
//! (`time="..." level=error msg="..."`) or as JSON (`{"level":"error","msg":"...","time":"..."}`),
//! to `--log FILE` when given, else to stderr. containerd and podman read the last `error` line
//! of the log file as the failure reason.
//!
//! A tiny `tracing` subscriber of our own: no thread, no buffering, one `write` per line (the
//! file is opened with O_APPEND, so lines from the runtime and its children do not interleave).
//! It is the whole subscriber, not a layer over tracing-subscriber's registry: nothing here
//! uses spans, and the registry's span slab (32 KB of heap at start) only added to peak RSS.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::cli::LogFormat;

/// Where log lines go.
#[derive(Debug)]
pub enum Sink {
    Stderr,
    File(File),
}

/// The subscriber: formats events at or above `max` to `sink`.
#[derive(Debug)]
pub struct LogLayer {
    sink: Sink,
    format: LogFormat,
    max: Level,
}

impl LogLayer {
    pub fn new(sink: Sink, format: LogFormat, max: Level) -> LogLayer {
        LogLayer { sink, format, max }
    }
}

/// Sets up logging for this process. Returns whether log lines go to a file (then the final
/// error must also be printed to stderr by the caller, as runc does).
pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) -> anyhow::Result<bool> {
    // runc logs at info by default; we keep stderr quieter so that `run`'s output is the
    // container's, and send info to the log file only.
    let (sink, max) = match log {
        Some(path) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("open log file {}: {e}", path.display()))?;
            (Sink::File(f), if debug { Level::DEBUG } else { Level::INFO })
        }
        None => (Sink::Stderr, if debug { Level::DEBUG } else { Level::WARN }),
    };
    let to_file = matches!(sink, Sink::File(_));
    let _ = tracing::subscriber::set_global_default(LogLayer::new(sink, format, max));
    Ok(to_file)
}

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    msg: String,
    extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            self.extra.push((field.name().to_string(), value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            self.extra.push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// RFC 3339 time in UTC, seconds precision, as logrus writes it.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// One JSON log line (with its newline). Keys are sorted, as logrus sorts them.
pub fn json_line(level: &Level, msg: &str, extra: &[(String, String)], time: &str) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in extra {
        m.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    m.insert("level".into(), level_name(level).into());
    m.insert("msg".into(), msg.into());
    m.insert("time".into(), time.into());
    let mut s = serde_json::Value::Object(m).to_string();
    s.push('\n');
    s
}

/// One logrus text line (with its newline): `time="..." level=error msg="..." key=value`.
pub fn text_line(level: &Level, msg: &str, extra: &[(String, String)], time: &str) -> String {
    let mut s = String::with_capacity(64 + msg.len());
    s.push_str("time=");
    push_value(&mut s, time);
    s.push_str(" level=");
    s.push_str(level_name(level));
    s.push_str(" msg=");
    push_value(&mut s, msg);
    for (k, v) in extra {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        push_value(&mut s, v);
    }
    s.push('\n');
    s
}

/// logrus quotes a value unless it is made only of `[A-Za-z0-9-._/@^+]`.
fn push_value(s: &mut String, v: &str) {
    let plain = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'));
    if plain {
        s.push_str(v);
    } else {
        // JSON string escaping is close to Go's %q for what appears in messages.
        s.push_str(&serde_json::Value::String(v.to_string()).to_string());
    }
}

impl Subscriber for LogLayer {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    // Spans are not used; they all get the same id and record nothing.
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = event.metadata().level();
        if *level > self.max {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let time = now();
        let line = match self.format {
            LogFormat::Json => json_line(level, &fields.msg, &fields.extra, &time),
            LogFormat::Text => text_line(level, &fields.msg, &fields.extra, &time),
        };
        let _ = match &self.sink {
            Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Sink::File(f) => (&*f).write_all(line.as_bytes()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_runc_keys() {
        let line = json_line(&Level::ERROR, "container \"x\" does not exist", &[], "2024-01-02T03:04:05Z");
        assert_eq!(
            line,
            "{\"level\":\"error\",\"msg\":\"container \\\"x\\\" does not exist\",\"time\":\"2024-01-02T03:04:05Z\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v.as_object().unwrap().len(), 3);

        let line = json_line(&Level::WARN, "m", &[("id".into(), "c1".into())], "t");
        assert_eq!(line, "{\"id\":\"c1\",\"level\":\"warning\",\"msg\":\"m\",\"time\":\"t\"}\n");
    }

    #[test]
    fn text_line_is_logrus_style() {
        let line = text_line(&Level::ERROR, "container does not exist", &[], "2024-01-02T03:04:05Z");
        assert_eq!(line, "time=\"2024-01-02T03:04:05Z\" level=error msg=\"container does not exist\"\n");
        let line = text_line(&Level::DEBUG, "plain", &[("pid".into(), "42".into())], "t");
        assert_eq!(line, "time=t level=debug msg=plain pid=42\n");
        let line = text_line(&Level::INFO, "", &[], "t");
        assert_eq!(line, "time=t level=info msg=\"\"\n");
    }

    #[test]
    fn time_is_rfc3339_utc() {
        let t = now();
        assert_eq!(t.len(), "2024-01-02T03:04:05Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }

    #[test]
    fn layer_writes_to_file_and_filters_levels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let f = OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let sub = LogLayer::new(Sink::File(f), LogFormat::Json, Level::INFO);
        tracing::subscriber::with_default(sub, || {
            tracing::debug!("hidden");
            tracing::info!(id = "c1", "shown");
            tracing::error!("boom: {}", 42);
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "shown");
        assert_eq!(lines[0]["id"], "c1");
        assert_eq!(lines[1]["level"], "error");
        assert_eq!(lines[1]["msg"], "boom: 42");
    }
}
