//! `events`: resource usage every interval and OOM notifications, as runc prints them.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use super::Container;
use crate::cgroups::{Cgroups, OomWatch, Stats};
use crate::error::{Error, Result};
use crate::process;
use crate::state::Status;

/// One line of `events`: `{"type":"stats","id":..,"data":{..}}` or `{"type":"oom","id":..}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Event {
    pub fn stats(id: &str, stats: Stats) -> Event {
        Event { kind: "stats".into(), id: id.into(), data: Some(stats) }
    }
    pub fn oom(id: &str) -> Event {
        Event { kind: "oom".into(), id: id.into(), data: None }
    }
}

impl Container {
    /// The container's resource usage now.
    pub fn stats(&self) -> Result<Stats> {
        self.cgroup()?.stats(&Cgroups::detect()?)
    }

    /// Calls `on` with a stats event every `interval` (the first after one interval, as runc)
    /// and with an OOM event at each OOM, until the container stops. With `stats_only`, one
    /// stats event at once and return.
    pub fn events(&self, interval: Duration, stats_only: bool, mut on: impl FnMut(&Event) -> Result<()>) -> Result<()> {
        if self.status() == Status::Stopped {
            return Err(Error::State(format!("container with id {} is not running", self.id())));
        }
        if stats_only {
            return on(&Event::stats(self.id(), self.stats()?));
        }
        if interval.is_zero() {
            return Err(Error::Other("duration interval must be greater than 0".into()));
        }
        let cg = Cgroups::detect()?;
        let m = self.cgroup()?;
        let init = process::pidfd_open(self.rec.pid).map_err(|_| Error::State(format!("container with id {} is not running", self.id())))?;
        if !self.rec.init_alive() {
            return Err(Error::State(format!("container with id {} is not running", self.id())));
        }
        let mut oom = match OomWatch::new(&m) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("no OOM events for {}: {e}", self.id());
                None
            }
        };
        let mut next = Instant::now() + interval;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            let timeout = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
            let mut fds = vec![PollFd::new(init.as_fd(), PollFlags::POLLIN)];
            if let Some(w) = &oom {
                fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
            }
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll container events", e)),
            }
            let stopped = fds[0].any().unwrap_or(false);
            drop(fds);
            // Also after the init exited: an OOM kill of the init is reported before the end.
            if let Some(w) = &mut oom {
                if w.read()? > 0 {
                    on(&Event::oom(self.id()))?;
                }
            }
            if stopped {
                return Ok(());
            }
            if Instant::now() >= next {
                next += interval;
                match m.stats(&cg) {
                    Ok(s) => on(&Event::stats(self.id(), s))?,
                    Err(_) if !self.rec.init_alive() => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stats_event_has_runc_shape() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.cpu.usage.percpu = vec![2, 3];
        s.memory.usage.limit = 100;
        s.pids.current = 1;
        let v = serde_json::to_value(Event::stats("c1", s)).unwrap();
        assert_eq!(
            v,
            json!({"type": "stats", "id": "c1", "data": {
                "cpu": {"usage": {"total": 5, "percpu": [2, 3], "kernel": 0, "user": 0}, "throttling": {}},
                "memory": {
                    "usage": {"limit": 100, "failcnt": 0},
                    "swap": {"limit": 0, "failcnt": 0},
                    "kernel": {"limit": 0, "failcnt": 0},
                    "kernelTCP": {"limit": 0, "failcnt": 0}
                },
                "pids": {"current": 1},
                "blkio": {},
                "hugetlb": {},
                "intel_rdt": {},
                "network_interfaces": null
            }})
        );
    }

    #[test]
    fn oom_event_has_no_data() {
        assert_eq!(serde_json::to_string(&Event::oom("c1")).unwrap(), r#"{"type":"oom","id":"c1"}"#);
    }
}
