//! The default `config.json` that `skiff-runtime spec` writes (and the engine starts from).
//!
//! OWNER: CLI helper.

use oci_spec::runtime::Spec;

/// runc's default spec (rootful), or its rootless variant.
pub fn default_spec(_rootless: bool) -> Spec {
    todo!()
}
