//! skiff-engine: containers over images.
