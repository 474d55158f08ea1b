//! `ps`: the container's pids as JSON, or ps(1)'s output filtered to them (as runc does).

use std::process::Command;

use anyhow::{bail, Context, Result};
use skiff_core::Runtime;

use crate::cli::{Format, PsArgs};

/// `ps`: [`Runtime::load`] + [`skiff_core::Container::pids`].
pub fn ps(rt: &Runtime, a: &PsArgs) -> Result<i32> {
    let pids = rt.load(&a.id)?.pids()?;
    if a.format == Format::Json {
        println!("{}", serde_json::to_string(&pids).context("encode pids")?);
        return Ok(0);
    }
    let default = ["-ef".to_string()];
    let args: &[String] = if a.ps_args.is_empty() { &default } else { &a.ps_args };
    let out = Command::new("ps").args(args).output().context("run ps")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        bail!("ps {}: {}: {}", args.join(" "), out.status, text.trim_end());
    }
    print!("{}", filter_ps(&text, &pids)?);
    Ok(0)
}

/// Keeps ps's header and the lines whose PID column is one of `pids`.
pub fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|f| f == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or_default();
        let pid: i32 = field.parse().with_context(|| format!("unable to parse pid {field:?}"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_pids() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                    root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                    root         300       1  0 10:01 ?        00:00:00 sh\n\
                    root         301     300  0 10:01 ?        00:00:00 sleep 100\n";
        let out = filter_ps(text, &[300, 301]).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("UID"));
        assert!(lines[1].ends_with(" sh"));
        assert!(lines[2].ends_with("sleep 100"));
        assert!(filter_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
