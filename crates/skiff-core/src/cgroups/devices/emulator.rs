//! Evaluating rules the way a v1 devices cgroup (and runc's emulator) does: see the module docs
//! of `devices` for the semantics.

use std::collections::BTreeMap;

use super::{v1_line, Access, Kind, Rule};
use crate::error::{Error, Result};

/// type, major, minor of an exception (`None` = `*`); never `Kind::All`.
pub(crate) type Key = (Kind, Option<u32>, Option<u32>);

/// A default action plus exceptions, each with the opposite action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct State {
    /// Allow everything not excepted (v1 "blacklist" mode); false: deny (the start state).
    pub default_allow: bool,
    pub exceptions: BTreeMap<Key, Access>,
}

impl State {
    /// Applies one rule in order.
    pub fn apply(&mut self, r: &Rule) -> Result<()> {
        if r.kind == Kind::All {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return Ok(());
        }
        let key = (r.kind, r.major, r.minor);
        if r.allow != self.default_allow {
            self.exceptions.entry(key).or_default().0 |= r.access.0;
            return Ok(());
        }
        // Taking access away from an exception: only an exact match can be changed.
        let partial = [(r.kind, None, r.minor), (r.kind, r.major, None), (r.kind, None, None)];
        for p in partial {
            if p == key {
                continue;
            }
            if let Some(have) = self.exceptions.get(&p).filter(|a| a.0 & r.access.0 != 0) {
                let verb = if r.allow { "allow" } else { "deny" };
                return Err(Error::field(
                    r.origin.clone(),
                    format!(
                        "{verb} {} would punch a hole in the earlier wildcard rule {}, which the devices cgroup cannot do",
                        v1_line(r.kind, r.major, r.minor, r.access),
                        v1_line(p.0, p.1, p.2, *have)
                    ),
                ));
            }
        }
        if let Some(have) = self.exceptions.get_mut(&key) {
            have.0 &= !r.access.0;
            if have.is_empty() {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }
}
