//! Records the git commit for `--version` (`SKIFF_COMMIT`, "unknown" outside a checkout).

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

fn main() {
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
