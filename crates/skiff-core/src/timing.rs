//! Per-phase timings for `--debug`: `mark("phase")` logs, at debug level, how long the phase
//! that ends there took and when it ended, in ms since the command started (since [`enable`]).
//!
//! Off by default, and then `mark` is one relaxed load and a branch. Forked children (stage 1,
//! the init, `exec`'s children) inherit the switch and the clock base, so their lines line up
//! with the runtime's; each line names its pid. A phase lasts from the previous mark in the
//! same process (a child starts from its parent's last mark before the fork).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);
/// CLOCK_MONOTONIC ns at `enable`, and at the last mark of this process.
static START: AtomicU64 = AtomicU64::new(0);
static LAST: AtomicU64 = AtomicU64::new(0);

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Turns timings on (`--debug`); the clock starts now.
pub fn enable() {
    let t = now_ns();
    START.store(t, Ordering::Relaxed);
    LAST.store(t, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether timings are on.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The phase that ends here is `phase`: logs its duration when timings are on.
#[inline]
pub fn mark(phase: &str) {
    if enabled() {
        log(phase);
    }
}

#[cold]
#[inline(never)]
fn log(phase: &str) {
    let now = now_ns();
    let last = LAST.swap(now, Ordering::Relaxed);
    let start = START.load(Ordering::Relaxed);
    let ms = |ns: u64| ns as f64 / 1e6;
    tracing::debug!("timing: {phase}: {:.3} ms (at {:.3} ms, pid {})", ms(now.saturating_sub(last)), ms(now.saturating_sub(start)), std::process::id());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_cheap_when_off_and_move_the_clock_when_on() {
        // Off: nothing changes.
        let before = LAST.load(Ordering::Relaxed);
        if !enabled() {
            mark("off");
            assert_eq!(LAST.load(Ordering::Relaxed), before);
        }
        enable();
        let t0 = LAST.load(Ordering::Relaxed);
        mark("on");
        assert!(LAST.load(Ordering::Relaxed) >= t0);
    }
}
