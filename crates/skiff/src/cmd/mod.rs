//! One module per group of commands; each returns the process's exit status.

mod containers;
pub mod images;
mod network;
mod progress;
pub mod registry;
mod run;
mod system;
mod volumes;

use skiff_engine::{Engine, EngineOptions};

use crate::cli::{Cli, Cmd, ContainerCmd, ImageCmd};
use crate::Result;

/// Whether fd is a terminal.
pub fn run_is_tty(fd: i32) -> bool {
    // SAFETY: isatty on a descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn engine(cli: &Cli) -> Result<Engine> {
    let rootless = cli.rootless || !nix::unistd::geteuid().is_root();
    if rootless {
        let root = cli.root.clone().unwrap_or_else(|| skiff_engine::engine::default_root(true));
        skiff_engine::rootless::enter(&root)?;
    }
    Ok(Engine::open(EngineOptions {
        root: cli.root.clone(),
        rootless,
        storage_driver: cli.storage_driver.clone(),
        ..Default::default()
    })?)
}

pub fn dispatch(cli: Cli) -> Result<i32> {
    // Credentials are the user's, not the store's: no engine (nor rootless namespace) needed.
    match cli.cmd {
        Cmd::Login(a) => return registry::login(a),
        Cmd::Logout(a) => return registry::logout(a),
        _ => {}
    }
    let e = engine(&cli)?;
    match cli.cmd {
        Cmd::Run(a) => run::run(&e, a),
        Cmd::Create(a) => run::create(&e, a),
        Cmd::Start(a) => run::start(&e, a),
        Cmd::Attach(a) => run::attach(&e, a),
        Cmd::Exec(a) => run::exec(&e, a),
        Cmd::Ps(a) | Cmd::Container { cmd: ContainerCmd::Ls(a) } => containers::ps(&e, a),
        Cmd::Logs(a) => containers::logs(&e, a),
        Cmd::Stop(a) => containers::stop(&e, a, false),
        Cmd::Restart(a) => containers::stop(&e, a, true),
        Cmd::Kill(a) => containers::kill(&e, a),
        Cmd::Pause(a) => containers::each(&e, &a.containers, |e, id| e.pause(id)),
        Cmd::Unpause(a) => containers::each(&e, &a.containers, |e, id| e.unpause(id)),
        Cmd::Rm(a) | Cmd::Container { cmd: ContainerCmd::Rm(a) } => containers::rm(&e, a),
        Cmd::Inspect(a) => system::inspect(&e, a, None),
        Cmd::Container { cmd: ContainerCmd::Inspect(a) } => system::inspect(&e, a, Some("container")),
        Cmd::Top(a) => containers::top(&e, a),
        Cmd::Stats(a) => containers::stats(&e, a),
        Cmd::Wait(a) => containers::wait(&e, a),
        Cmd::Rename { container, new_name } => {
            let id = e.resolve(&container).map_err(|x| crate::fail(x.to_string()))?;
            e.rename(&id, &new_name).map_err(|x| crate::fail(x.to_string()))?;
            Ok(0)
        }
        Cmd::Update(a) => containers::update(&e, a),
        Cmd::Port { container, port } => network::port(&e, &container, port.as_deref()),
        Cmd::Network { cmd } => network::network(&e, cmd),
        Cmd::Container { cmd: ContainerCmd::Prune(a) } => containers::prune(&e, a),
        Cmd::Commit(a) => images::commit(&e, a),
        Cmd::Export(a) => containers::export(&e, a),
        Cmd::Cp(a) => containers::cp(&e, a),
        Cmd::Diff { container } => containers::diff(&e, &container),
        Cmd::Images(a) | Cmd::Image { cmd: ImageCmd::Ls(a) } => images::images(&e, a),
        Cmd::Image { cmd: ImageCmd::Inspect(a) } => system::inspect(&e, a, Some("image")),
        Cmd::Image { cmd: ImageCmd::Prune(a) } => images::prune(&e, a),
        Cmd::Rmi(a) | Cmd::Image { cmd: ImageCmd::Rm(a) } => images::rmi(&e, a),
        Cmd::Tag { source, target }
        | Cmd::Image {
            cmd: ImageCmd::Tag { source, target },
        } => {
            e.images.tag(&source, &target).map_err(|x| crate::fail(x.to_string()))?;
            Ok(0)
        }
        Cmd::Load(a) | Cmd::Image { cmd: ImageCmd::Load(a) } => images::load(&e, a),
        Cmd::Pull(a) | Cmd::Image { cmd: ImageCmd::Pull(a) } => registry::pull(&e, a),
        Cmd::Push(a) | Cmd::Image { cmd: ImageCmd::Push(a) } => registry::push(&e, a),
        Cmd::Login(_) | Cmd::Logout(_) => unreachable!("handled before the engine opens"),
        Cmd::Import(a) | Cmd::Image { cmd: ImageCmd::Import(a) } => images::import(&e, a),
        Cmd::Save(a) | Cmd::Image { cmd: ImageCmd::Save(a) } => images::save(&e, a),
        Cmd::History(a) | Cmd::Image { cmd: ImageCmd::History(a) } => images::history(&e, a),
        Cmd::Volume { cmd } => volumes::volume(&e, cmd),
        Cmd::System { cmd } => system::system(&e, cmd),
        Cmd::Info(f) => system::info(&e, f),
        Cmd::Version(f) => system::version(f),
        Cmd::ContainerCleanup { id } => {
            let fds: Vec<i32> = std::env::var("SKIFF_ATTACHED_FDS")
                .unwrap_or_default()
                .split(',')
                .filter_map(|s| s.parse().ok())
                .collect();
            e.cleanup(&id, &fds, std::process::id() as i32)?;
            Ok(0)
        }
    }
}
