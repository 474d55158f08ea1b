//! The pieces of skiff's container monitor that the engine shares: the attach protocol, the
//! json-file log format and the exit record. The `skiff-monitor` binary (a `[[bin]]` of the
//! `skiff` package calling [`run::main`]) is what runs beside each container.

mod io;
pub mod jsonlog;
mod log;
pub use log::create as create_log;
pub mod proto;
pub mod run;
mod server;
pub mod time;
mod trim;
