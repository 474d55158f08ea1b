//! The OCI features document (`skiff-runtime features`).
//!
//! OWNER: CLI helper.

/// The features JSON, as runc prints it.
pub fn features_json() -> serde_json::Value {
    todo!()
}
