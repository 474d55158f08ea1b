//! Running the `nft` binary: a script on stdin (one atomic transaction), a JSON listing out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// Where `nft` is: `$SKIFF_NFT`, else the first of the usual places, else `nft` on `$PATH`.
pub(crate) fn find_nft() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_NFT") {
        return PathBuf::from(p);
    }
    for p in ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/usr/local/sbin/nft"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("nft")
}

/// Runs `nft -f -` with `script` on stdin. nft sends the whole script to the kernel as one netlink
/// batch: either all of it applies or none of it does.
pub(crate) fn apply(nft: &Path, script: &str) -> Result<()> {
    tracing::debug!(script, "nft -f -");
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nft(format!("cannot run {}: {e}", nft.display())))?;
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(script.as_bytes()),
        None => Ok(()),
    };
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(format!("waiting for {}: {e}", nft.display())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Nft(format!("{} -f - failed ({}): {}", nft.display(), out.status, stderr.trim())));
    }
    written.map_err(|e| Error::Nft(format!("writing to {}: {e}", nft.display())))
}

/// Runs `nft -j -a list <what...>` and returns the parsed objects of its `nftables` array.
/// `Ok(None)` when the object listed does not exist (ENOENT).
pub(crate) fn list(nft: &Path, what: &[&str]) -> Result<Option<Vec<serde_json::Value>>> {
    let out = Command::new(nft)
        .args(["-j", "-a", "list"])
        .args(what)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Nft(format!("cannot run {}: {e}", nft.display())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(Error::Nft(format!(
            "{} list {} failed ({}): {}",
            nft.display(),
            what.join(" "),
            out.status,
            stderr.trim()
        )));
    }
    let mut doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Nft(format!("{} list {}: bad JSON: {e}", nft.display(), what.join(" "))))?;
    match doc.get_mut("nftables").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(items)) => Ok(Some(items)),
        _ => Err(Error::Nft(format!("{} list {}: no \"nftables\" array", nft.display(), what.join(" ")))),
    }
}

/// A rule of a listing: its handle and comment.
pub(crate) struct ListedRule {
    pub handle: u64,
    pub comment: Option<String>,
}

/// The rules among the objects of a listing.
pub(crate) fn rules(items: Vec<serde_json::Value>) -> Vec<ListedRule> {
    let mut out = Vec::new();
    for item in items {
        let Some(rule) = item.get("rule") else { continue };
        let Some(handle) = rule.get("handle").and_then(serde_json::Value::as_u64) else {
            continue;
        };
        let comment = rule.get("comment").and_then(serde_json::Value::as_str).map(str::to_string);
        out.push(ListedRule { handle, comment });
    }
    out
}
