//! `spec` and `features`: documents that need no container.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cli::{Global, Rootless, SpecArgs};
use crate::json::{to_string_ordered, FEATURES_ORDER, SPEC_ORDER};

/// `spec`: writes [`skiff_core::template::default_spec_json`] to `<bundle>/config.json`, refusing to
/// overwrite one (runc's message). `--rootless` (the global flag) picks the rootless variant.
pub fn spec(g: &Global, a: &SpecArgs) -> Result<i32> {
    let dir = a.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
    write_spec(&dir, g.rootless == Some(Rootless::True))?;
    Ok(0)
}

fn write_spec(dir: &Path, rootless: bool) -> Result<()> {
    if !dir.is_dir() {
        bail!("bundle {}: not a directory", dir.display());
    }
    let path = dir.join("config.json");
    if path.symlink_metadata().is_ok() {
        bail!("File config.json exists. Remove it first");
    }
    // Written from the template's JSON (not the parsed Spec, whose capability sets are hash
    // sets) in runc's field order and tab indentation, without a final newline, like runc.
    let spec = skiff_core::template::default_spec_json(rootless);
    let text = to_string_ordered(&spec, "\t", SPEC_ORDER);
    fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// `features`: [`skiff_core::features::features_json`], indented like runc's.
pub fn features() -> Result<i32> {
    println!("{}", to_string_ordered(&skiff_core::features::features_json(), "    ", FEATURES_ORDER));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_writes_tab_indented_config_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        write_spec(dir.path(), false).unwrap();
        let text = fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(text.starts_with("{\n\t\"ociVersion\": \"1.2.0\""), "{text}");
        skiff_core::spec::parse(text.as_bytes()).unwrap();
        let err = write_spec(dir.path(), false).unwrap_err();
        assert_eq!(err.to_string(), "File config.json exists. Remove it first");
        assert!(write_spec(&dir.path().join("missing"), false).is_err());
    }
}
