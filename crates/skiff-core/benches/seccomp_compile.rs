//! What compiling Docker's default seccomp profile costs (goal: <= 1 ms), without criterion:
//! `cargo bench -p skiff-core --bench seccomp_compile [-- ITERATIONS]`.
//!
//! Three steps, each timed over ITERATIONS runs (median and minimum):
//! - table: resolving the default profile for a capability set (`default_profile`);
//! - rules: libseccomp filter context with all rules (`compile`, done by the runtime before fork);
//! - bpf: generating the BPF program from the context (what libseccomp's load does before the
//!   seccomp(2) call);
//! - cached: what `create` pays once the BPF is in the state root's cache (`cache::for_spec`:
//!   resolve nothing, read and check the entry), instead of rules + bpf.

use std::time::{Duration, Instant};

use skiff_core::seccomp::{cache, compile, default_profile, native_arch};

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("{name:<28}median {:>8.1} us   min {:>8.1} us   p90 {:>8.1} us", us(v[v.len() / 2]), us(v[0]), us(v[v.len() * 9 / 10]));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().skip(1).find(|a| !a.starts_with('-')).and_then(|a| a.parse().ok()).unwrap_or(200);
    let caps: Vec<String> = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"].iter().map(|s| s.to_string()).collect();
    let (mut table, mut rules, mut bpf, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..n {
        let t0 = Instant::now();
        let p = default_profile(&caps, native_arch());
        let t1 = Instant::now();
        let f = compile(&p)?;
        let t2 = Instant::now();
        size = f.bpf()?.len();
        let t3 = Instant::now();
        table.push(t1 - t0);
        rules.push(t2 - t1);
        bpf.push(t3 - t2);
        total.push(t3 - t0);
    }
    println!("default seccomp profile ({}, {} iterations, BPF {} instructions)", native_arch(), n, size / 8);
    stats("table (default_profile)", table);
    stats("rules (compile)", rules);
    stats("bpf generation", bpf);
    stats("total (uncached)", total);

    let root = tempfile::tempdir()?;
    let spec = skiff_core::template::default_spec(false);
    cache::for_spec(&spec, root.path())?;
    let mut cached = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let f = cache::for_spec(&spec, root.path())?;
        cached.push(t.elapsed());
        assert!(f.is_some_and(|f| f.is_bpf()), "cache miss");
    }
    stats("cached (cache::for_spec)", cached);
    Ok(())
}
