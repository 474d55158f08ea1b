//! Tests of the cgroups module: detection, resolution, fake v1/v2 trees, and the real host.
