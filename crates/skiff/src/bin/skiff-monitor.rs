//! `skiff-monitor`: the per-container monitor (see `skiff_monitor::run`). A binary of this
//! package so that it is always built and installed beside `skiff`; it links only the small
//! monitor library.

fn main() -> std::process::ExitCode {
    skiff_monitor::run::main()
}
