//! The pieces of skiff's container monitor that the engine shares: the attach protocol, the
//! json-file log format and the exit record. The `skiff-monitor` binary (see `main.rs`) is
//! what runs beside each container.

pub mod jsonlog;
pub mod proto;
pub mod time;
