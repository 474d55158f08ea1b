//! pause, resume, events.

use std::io::Write;

use anyhow::Result;
use skiff_core::Runtime;

use crate::cli::EventsArgs;

/// `pause`: [`skiff_core::Container::pause`].
pub fn pause(rt: &Runtime, id: &str) -> Result<i32> {
    rt.load(id)?.pause()?;
    Ok(0)
}

/// `resume`: [`skiff_core::Container::resume`].
pub fn resume(rt: &Runtime, id: &str) -> Result<i32> {
    rt.load(id)?.resume()?;
    Ok(0)
}

/// `events`: one JSON object per line (stats every `--interval`, OOM notifications) until the
/// container stops; with `--stats` one stats object and exit.
pub fn events(rt: &Runtime, a: &EventsArgs) -> Result<i32> {
    let c = rt.load(&a.id)?;
    let stdout = std::io::stdout();
    c.events(a.interval, a.stats, |ev| {
        let line = serde_json::to_string(ev).map_err(|e| skiff_core::Error::Other(format!("encode event: {e}")))?;
        let mut out = stdout.lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| skiff_core::Error::Other(format!("write event: {e}")))
    })?;
    Ok(0)
}
