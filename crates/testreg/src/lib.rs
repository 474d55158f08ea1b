//! Test support for skiff's registry client: real registries (Debian's `docker-registry`) on
//! 127.0.0.1 with no auth, htpasswd or bearer tokens, over HTTP or TLS; a Docker token server; a
//! fault-injecting proxy; image fixtures pushed with skopeo. Dev-only: tests use it, nothing ships it.
//!
//! Everything a test starts is tied to a value: dropping it kills the process (by pid) and removes
//! its temporary directory. Long-lived children also get SIGKILL when the test process exits.
//!
//! ```no_run
//! use testreg::{push_image, sample_image, FaultProxy, Faults, Registry, RegistryOpts, TokenConfig};
//!
//! let reg = Registry::start(RegistryOpts::token(TokenConfig::default()));
//! let layout = tempfile::tempdir().unwrap();
//! let img = sample_image(layout.path(), "v1");
//! push_image(&reg, layout.path(), "library/sample:v1");
//! // Corrupt a stored layer, or put a proxy in front of a plain registry:
//! std::fs::write(reg.blob_path(&img.layers[0].digest), b"junk").unwrap();
//! let plain = Registry::start(RegistryOpts::default());
//! let proxy = FaultProxy::start(&plain.host(), Faults { drop_after_bytes: Some(1000), drop_times: Some(1), ..Default::default() });
//! assert_eq!(proxy.requests().len(), 0);
//! ```

pub mod fixtures;
pub mod http;
pub mod pki;
pub mod proxy;
pub mod registry;
pub mod skopeo;
pub mod token;
pub mod util;

pub use fixtures::{layer_tar, malicious_image, multiarch_image, pseudo_random, sample_image, write_image, Blob, Compression, Entry, Image, Layer};
pub use proxy::{FaultProxy, Faults, Listener, ProxyRequest};
pub use registry::{Auth, Registry, RegistryOpts};
pub use skopeo::{pull_with_skopeo, push_image, push_image_with, push_ref, skopeo_args, Side};
pub use token::{KeyRef, TokenConfig, TokenRequest, TokenServer};
