//! The devices cgroup: `linux.resources.devices` plus runc's default rules, applied through the
//! v1 `devices` controller or, on a pure cgroup2 host, a BPF_PROG_TYPE_CGROUP_DEVICE program.
//!
//! # The effective rule list (as runc's specconv builds it)
//! 1. the spec's `linux.resources.devices`, in order;
//! 2. runc's `AllowedDevices` ([`default_rules`]), appended, except the ones whose device path
//!    a `linux.devices` entry also names (the config's device takes priority).
//!
//! `linux.devices` entries do not add allow rules of their own: runc stopped doing so (see its
//! `specconv.createDevices`), and a config that lists `/dev/null` there and denies `c 1:3` must
//! keep `/dev/null` denied.
//!
//! # Order semantics (runc's `devices/emulator`, i.e. what a v1 cgroup does)
//! Evaluation starts from "deny everything" and applies the rules in order:
//! - an `a` rule resets: allow-all (`allow: true`) or deny-all, dropping every exception;
//! - a rule whose action differs from the current default adds an exception (the access of
//!   rules with the same type:major:minor is merged);
//! - a rule with the same action as the default removes its access from the exception with
//!   exactly the same type:major:minor (a no-op if there is none). Removing access that a
//!   wildcard exception (`c *:*`, `c 1:*`, `c *:3`) grants is refused: v1 would silently ignore
//!   it.
//!
//! So for non-overlapping rules the last matching rule wins. The result ([`State`]) is a default
//! action plus exceptions that all have the opposite action, so their order no longer matters:
//! v1 gets `a` written to the default's file and then one line per exception; the BPF program
//! checks the exceptions one by one and falls through to the default. An access matches an
//! exception when every requested bit is in it (as runc's program and v1's allow-list check).

mod attach;
mod bpf;
mod emulator;
mod v1;

#[cfg(test)]
mod tests;

use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::{Cgroups, Manager};
use crate::error::{Error, Result};

pub(crate) use emulator::State;

/// Device type of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    All,
    Char,
    Block,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::All => 'a',
            Kind::Char => 'c',
            Kind::Block => 'b',
        }
    }
}

/// Access bits, valued as the kernel's BPF_DEVCG_ACC_* so the BPF program can use them as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Access(pub u8);

impl Access {
    pub const MKNOD: u8 = 1;
    pub const READ: u8 = 2;
    pub const WRITE: u8 = 4;
    pub const ALL: Access = Access(7);

    /// Parses `rwm`-style access; `None` for an unknown character or an empty string.
    fn parse(s: &str) -> Option<Access> {
        let mut bits = 0;
        for c in s.chars() {
            bits |= match c {
                'r' => Access::READ,
                'w' => Access::WRITE,
                'm' => Access::MKNOD,
                _ => return None,
            };
        }
        (bits != 0).then_some(Access(bits))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (bit, c) in [(Access::READ, 'r'), (Access::WRITE, 'w'), (Access::MKNOD, 'm')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One validated rule; `None` major/minor is the wildcard `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
    /// Where the rule came from, for error messages (`linux.resources.devices[2]`).
    pub origin: String,
}

/// `c 1:3 rwm` (v1 syntax); `a` for the all-devices rule.
pub(crate) fn v1_line(kind: Kind, major: Option<u32>, minor: Option<u32>, access: Access) -> String {
    if kind == Kind::All {
        return "a".to_string();
    }
    let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    format!("{} {}:{} {}", kind.letter(), num(major), num(minor), access)
}

/// kind, major, minor, access bits.
type DefaultRule = (Kind, Option<u32>, Option<u32>, u8);

const fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>) -> DefaultRule {
    (kind, major, minor, 7)
}

/// runc's `specconv.AllowedDevices`, in its order, with the device path if it has one.
const DEFAULTS: [(DefaultRule, Option<&str>); 11] = [
    ((Kind::Char, None, None, Access::MKNOD), None),
    ((Kind::Block, None, None, Access::MKNOD), None),
    (allow(Kind::Char, Some(1), Some(3)), Some("/dev/null")),
    (allow(Kind::Char, Some(1), Some(8)), Some("/dev/random")),
    (allow(Kind::Char, Some(1), Some(7)), Some("/dev/full")),
    (allow(Kind::Char, Some(5), Some(0)), Some("/dev/tty")),
    (allow(Kind::Char, Some(1), Some(5)), Some("/dev/zero")),
    (allow(Kind::Char, Some(1), Some(9)), Some("/dev/urandom")),
    // /dev/pts/* (the console is a pts too).
    (allow(Kind::Char, Some(136), None), None),
    // /dev/ptmx
    (allow(Kind::Char, Some(5), Some(2)), None),
    // /dev/net/tun
    (allow(Kind::Char, Some(10), Some(200)), None),
];

/// runc's default allow rules, minus those for a path that `devices` (linux.devices) names.
pub(crate) fn default_rules(devices: &[LinuxDevice]) -> Vec<Rule> {
    DEFAULTS
        .iter()
        .filter(|(_, path)| path.is_none_or(|p| !devices.iter().any(|d| d.path() == Path::new(p))))
        .map(|&((kind, major, minor, access), _)| {
            let origin = format!("default rule {}", v1_line(kind, major, minor, Access(access)));
            Rule { allow: true, kind, major, minor, access: Access(access), origin }
        })
        .collect()
}

/// Checks one `linux.resources.devices[i]` entry.
pub(crate) fn validate(i: usize, r: &LinuxDeviceCgroup) -> Result<Rule> {
    let field = |f: &str| format!("linux.resources.devices[{i}].{f}");
    let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => Kind::All,
        LinuxDeviceType::C => Kind::Char,
        LinuxDeviceType::B => Kind::Block,
        other => {
            return Err(Error::field(field("type"), format!("{:?} is not a cgroup device type (must be a, c or b)", other.as_str())))
        }
    };
    let num = |v: Option<i64>, f: &str| -> Result<Option<u32>> {
        match v {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| Error::field(field(f), format!("{n} is out of range (-1 for any, or 0..={})", u32::MAX))),
        }
    };
    let major = num(r.major(), "major")?;
    let minor = num(r.minor(), "minor")?;
    // `access` is optional in the runtime spec; absent means all of it (rwm), as crun does.
    let text = r.access().as_deref().unwrap_or("rwm");
    let access = Access::parse(text)
        .ok_or_else(|| Error::field(field("access"), format!("{text:?}: must be a non-empty combination of r, w and m")))?;
    Ok(Rule { allow: r.allow(), kind, major, minor, access, origin: format!("linux.resources.devices[{i}]") })
}

/// The effective rules (see the module docs), validated and in evaluation order.
pub(crate) fn effective_rules(rules: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Result<Vec<Rule>> {
    let mut out = rules.iter().enumerate().map(|(i, r)| validate(i, r)).collect::<Result<Vec<_>>>()?;
    out.extend(default_rules(devices));
    Ok(out)
}

/// Validates and evaluates the effective rules into the state to enforce.
pub(crate) fn compute(rules: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Result<State> {
    let mut state = State::default();
    for r in effective_rules(rules, devices)? {
        state.apply(&r)?;
    }
    Ok(state)
}

/// True if the host has a v1 hierarchy with the devices controller.
fn has_v1_devices(cgroups: &Cgroups) -> bool {
    cgroups.hierarchies.iter().any(|h| !h.v2 && h.controllers.iter().any(|c| c == "devices"))
}

impl Manager {
    /// Restricts the container's device access to `rules` (`linux.resources.devices`) plus
    /// runc's defaults, skipping defaults for paths in `devices` (`linux.devices`).
    ///
    /// Uses the v1 devices controller when the host has one (legacy and hybrid hosts; no eBPF is
    /// attached then); otherwise loads a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to
    /// the container's cgroup2 directory, replacing programs a previous call attached.
    pub fn apply_devices(&self, cgroups: &Cgroups, rules: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Result<()> {
        let state = compute(rules, devices)?;
        let v1 = has_v1_devices(cgroups);
        let mut done = false;
        for p in &self.paths {
            let Some(h) = cgroups.hierarchy_of(p) else { continue };
            if v1 && !h.v2 && h.controllers.iter().any(|c| c == "devices") {
                v1::apply(p, &state)?;
                done = true;
            } else if !v1 && h.v2 {
                let prog = bpf::program(&state)?;
                attach::replace(p, &prog)?;
                done = true;
            }
        }
        if !done {
            tracing::warn!("no devices cgroup (v1 controller or cgroup2 directory) for {:?}: device rules not applied", self.paths);
        }
        Ok(())
    }
}
