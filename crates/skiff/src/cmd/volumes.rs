//! volume create, ls, inspect, rm, prune.

use serde_json::Value;
use skiff_engine::Engine;

use crate::cli::VolumeCmd;
use crate::table;
use crate::{fail, Result};

pub fn volume(e: &Engine, cmd: VolumeCmd) -> Result<i32> {
    match cmd {
        VolumeCmd::Create { name, driver, labels } => {
            if driver != "local" {
                return Err(fail(format!("error looking up volume plugin {driver}: plugin \"{driver}\" not found")));
            }
            let labels = labels
                .iter()
                .map(|l| l.split_once('=').map_or((l.clone(), String::new()), |(k, v)| (k.to_string(), v.to_string())))
                .collect();
            let v = e.volumes.create(name.as_deref(), labels).map_err(|x| fail(x.to_string()))?;
            println!("{}", v.name);
        }
        VolumeCmd::Ls { quiet, format } => {
            let vols = e.volumes.list()?;
            if quiet {
                vols.iter().for_each(|v| println!("{}", v.name));
                return Ok(0);
            }
            let values: Vec<Value> = vols.iter().map(|v| serde_json::to_value(v).unwrap_or_default()).collect();
            table::emit(format.as_deref(), &values, &["DRIVER", "VOLUME NAME"], &["Driver", "Name"]).map_err(fail)?;
        }
        VolumeCmd::Inspect { names, format } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &names {
                match e.volumes.inspect(n) {
                    Ok(v) => out.push(serde_json::to_value(v).unwrap_or_default()),
                    Err(x) => {
                        eprintln!("Error: {x}");
                        code = 1;
                    }
                }
            }
            crate::cmd::system::print_inspect(&out, format.as_deref())?;
            return Ok(code);
        }
        VolumeCmd::Rm { force, names } => {
            let mut code = 0;
            for n in &names {
                let users = e.volume_users(n)?;
                match e.volumes.remove(n, &users) {
                    Ok(()) => println!("{n}"),
                    Err(skiff_engine::Error::NoSuchVolume(_)) if force => {}
                    Err(x) => {
                        eprintln!("Error: {x}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        VolumeCmd::Prune(_) => {
            let mut removed = Vec::new();
            for v in e.volumes.list()? {
                if v.anonymous && e.volume_users(&v.name)?.is_empty() && e.volumes.remove(&v.name, &[]).is_ok() {
                    removed.push(v.name);
                }
            }
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                removed.iter().for_each(|n| println!("{n}"));
                println!();
            }
            println!("Total reclaimed space: 0B");
        }
    }
    Ok(0)
}
