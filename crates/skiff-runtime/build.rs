//! Records the git commit for `--version` (`SKIFF_COMMIT`, "unknown" outside a checkout), and
//! passes the link options that keep the start path's memory small (see `link_options`).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// `git rev-parse --git-path` answers relative to the current directory; make it absolute.
fn git_path(name: &str) -> Option<String> {
    let p = git(&["rev-parse", "--git-path", name])?;
    let abs = std::fs::canonicalize(&p).ok()?;
    Some(abs.to_string_lossy().into_owned())
}

/// Link options for a small peak RSS (most of a runtime's RSS is the executable's own pages):
/// - `--symbol-ordering-file=hot-symbols.txt`: the functions the start path calls (found by
///   `bench/hot-symbols.sh`) are placed together, so starting a container faults in ~0.6 MB of
///   text instead of nearly all 2.3 MB. A stale list only costs memory, never correctness.
/// - `-z pack-relative-relocs` (DT_RELR, glibc >= 2.36): the dynamic relocations shrink from
///   ~230 KB, all read at every start, to ~3 KB.
///
/// Both need lld, the default linker of x86_64-unknown-linux-gnu since Rust 1.90. Set
/// `SKIFF_LINK_TUNING=0` to build without them.
fn link_options() {
    println!("cargo:rerun-if-env-changed=SKIFF_LINK_TUNING");
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    if std::env::var("SKIFF_LINK_TUNING").as_deref() == Ok("0") {
        return;
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || !rustc_at_least(1, 90) {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = std::path::Path::new(&dir).join("hot-symbols.txt");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=skiff-runtime=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=skiff-runtime=-Wl,--no-warn-symbol-ordering");
    }
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bin=skiff-runtime=-Wl,-z,pack-relative-relocs");
    }
}

/// "X.Y..." anywhere in `text` (after `prefix`) at least `major.minor`?
fn version_at_least(text: &str, prefix: &str, major: u32, minor: u32) -> bool {
    let Some(rest) = text.split(prefix).nth(1) else {
        return false;
    };
    let mut parts = rest.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return false;
    };
    match (a.parse::<u32>(), b.parse::<u32>()) {
        (Ok(a), Ok(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

fn rustc_at_least(major: u32, minor: u32) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc).arg("-V").output().ok();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    version_at_least(&text, "rustc ", major, minor)
}

fn glibc_at_least(major: u32, minor: u32) -> bool {
    let out = Command::new("getconf").arg("GNU_LIBC_VERSION").output().ok();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    version_at_least(&text, "glibc ", major, minor)
}

fn main() {
    link_options();
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SKIFF_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (branch switch) and the ref it points to (commit).
    if let Some(head) = git_path("HEAD") {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git_path(&r) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
