//! Parsing of Docker's flag values: sizes (`-m 512m`), CPUs (`--cpus 1.5`), ulimits,
//! restart policies, signals and durations.

use crate::error::{Error, Result};
use crate::record::{RestartPolicy, Ulimit};

/// `512`, `512b`, `10k`, `64m`, `1g`, `1.5g` (binary multiples, as Docker's RAMInBytes).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let bad = || Error::Invalid(format!("invalid size: '{s}'"));
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: i64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => return Err(bad()),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as i64)
}

/// `--cpus 1.5` → nano CPUs; must be positive and at most the host's CPU count.
pub fn nano_cpus(s: &str) -> Result<i64> {
    let v: f64 = s.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number"
        ))
    })?;
    if !v.is_finite() || v < 0.0 {
        return Err(Error::Invalid(format!(
            "invalid argument \"{s}\" for \"--cpus\" flag: range of CPUs is from 0.01 to the number of CPUs available"
        )));
    }
    let host = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    if v > host {
        return Err(Error::Invalid(format!(
            "range of CPUs is from 0.01 to {host:.2}, as there are only {host} CPUs available"
        )));
    }
    Ok((v * 1e9) as i64)
}

/// `--ulimit nofile=1024:2048` or `nproc=512`.
pub fn ulimit(s: &str) -> Result<Ulimit> {
    let bad = |why: &str| Error::Invalid(format!("invalid argument \"{s}\" for \"--ulimit\" flag: {why}"));
    let (name, vals) = s.split_once('=').ok_or_else(|| bad("expected NAME=SOFT[:HARD]"))?;
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !NAMES.contains(&name) {
        return Err(bad(&format!("invalid ulimit type: {name}")));
    }
    let num = |v: &str| v.parse::<i64>().map_err(|_| bad(&format!("invalid ulimit value: {v}")));
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard && hard != -1 {
        return Err(bad(&format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, max) = match s.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (s, None),
    };
    match (name, max) {
        ("no" | "", None) => Ok(RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        }),
        ("always" | "unless-stopped", None) => Ok(RestartPolicy {
            name: name.into(),
            maximum_retry_count: 0,
        }),
        ("on-failure", m) => {
            let n = match m {
                Some(m) => m
                    .parse::<u32>()
                    .map_err(|_| Error::Invalid(format!("invalid restart policy format: maximum retry count must be an integer: {s}")))?,
                None => 0,
            };
            Ok(RestartPolicy {
                name: name.into(),
                maximum_retry_count: n,
            })
        }
        (_, Some(_)) => Err(Error::Invalid(format!(
            "invalid restart policy format: maximum retry count cannot be used with restart policy '{name}'"
        ))),
        _ => Err(Error::Invalid(format!("invalid restart policy '{s}'"))),
    }
}

/// A signal by name (`TERM`, `SIGTERM`, `sigkill`) or number.
pub fn signal(s: &str) -> Result<nix::sys::signal::Signal> {
    skiff_core::signal::parse(s).map_err(|_| Error::Invalid(format!("invalid signal: {s}")))
}

/// "5 seconds", "About a minute", "2 hours" (Go's units.HumanDuration).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    let d = h / 24;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if m == 1 {
        "About a minute".into()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if d < 7 * 2 {
        format!("{d} days")
    } else if d < 30 * 2 {
        format!("{} weeks", d / 7)
    } else if d < 365 * 2 {
        format!("{} months", d / 30)
    } else {
        format!("{} years", d / 365)
    }
}

/// Sizes as Docker prints them (`1.23MB`, SI units with three significant digits).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Three significant digits, trailing zeros trimmed (Go's %.4g).
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut t = format!("{v:.digits$}");
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{t}{}", UNITS[i])
}

/// Binary sizes as `docker stats` prints them (`1.5MiB`).
pub fn human_binary(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string() + UNITS[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_docker() {
        assert_eq!(ram_in_bytes("512").unwrap(), 512);
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("10KB").unwrap(), 10 << 10);
        assert_eq!(ram_in_bytes("10xb").unwrap_err().to_string(), "invalid size: '10xb'");
        assert!(ram_in_bytes("").is_err());
        assert!(ram_in_bytes("-1m").is_err());
    }

    #[test]
    fn cpus_ulimits_restart() {
        assert_eq!(nano_cpus("0.5").unwrap(), 500_000_000);
        assert!(nano_cpus("-1").is_err());
        assert!(nano_cpus("abc").is_err());
        assert!(nano_cpus("100000").is_err());
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(ulimit("nproc=5").unwrap().hard, 5);
        assert!(ulimit("nofile=10:5").is_err());
        assert!(ulimit("bogus=1").is_err());
        assert_eq!(restart_policy("on-failure:3").unwrap().maximum_retry_count, 3);
        assert_eq!(restart_policy("always").unwrap().name, "always");
        assert!(restart_policy("always:3").is_err());
        assert!(restart_policy("sometimes").is_err());
    }

    #[test]
    fn human_forms() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(70), "About a minute");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_size(4_261_844), "4.26MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
        assert_eq!(human_binary(1536 * 1024), "1.5MiB");
    }
}
