//! Times import, commit, save and load of ~100 MB in a throwaway store:
//! `cargo run --release -p skiff-image --example image_bench [DIR]` (DIR: where the store and
//! inputs go, default a temp dir under /var/tmp).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use skiff_image::{ArchiveFormat, Commit, ImportOptions, Store, StoreOptions};

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// ~100 MB: 80 files of 1 MB, 2000 files of 10 KB in 20 dirs.
fn fill(dir: &Path) -> u64 {
    let mut total = 0;
    for i in 0..80 {
        let d = pseudo_random(i + 1, 1 << 20);
        fs::create_dir_all(dir.join("big")).unwrap();
        fs::write(dir.join(format!("big/{i}")), &d).unwrap();
        total += d.len() as u64;
    }
    for i in 0..2000u64 {
        let d = pseudo_random(i + 1000, 10 * 1024);
        let sub = dir.join(format!("small/{}", i % 20));
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join(i.to_string()), &d).unwrap();
        total += d.len() as u64;
    }
    total
}

fn time<T>(what: &str, bytes: u64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    let s = t.elapsed().as_secs_f64();
    println!("{what:<28} {:>8.0} ms  {:>7.0} MB/s", s * 1000.0, bytes as f64 / s / 1e6);
    r
}

fn main() {
    let base: PathBuf = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let t = tempfile_dir(&base);
    let src = t.join("src");
    let bytes = fill(&src);
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", &src).unwrap();
    let tar = tar.into_inner().unwrap();
    let store = Store::open(t.join("store"), StoreOptions::default()).unwrap();

    let img = time("import (plain tar)", bytes, || {
        store
            .import(
                &tar[..],
                &ImportOptions {
                    reference: Some("bench:base".into()),
                    ..Default::default()
                },
            )
            .unwrap()
    });
    let upper = t.join("upper");
    fs::create_dir_all(&upper).unwrap();
    fill(&upper);
    sync();
    time("commit (upper dir)", bytes, || {
        store
            .commit(&Commit {
                parent: Some(&img),
                upper: &upper,
                reference: Some("bench:top".into()),
                changes: vec![],
                comment: None,
                author: None,
                container_config: None,
            })
            .unwrap()
    });
    let archive = t.join("a.tar");
    time("save docker-archive (2 layers)", 2 * bytes, || {
        let f = fs::File::create(&archive).unwrap();
        store
            .save(&["bench:top".into()], ArchiveFormat::DockerArchive, std::io::BufWriter::new(f))
            .unwrap()
    });
    let other = Store::open(t.join("store2"), StoreOptions::default()).unwrap();
    time("load docker-archive (2 layers)", 2 * bytes, || {
        other.load(std::io::BufReader::new(fs::File::open(&archive).unwrap())).unwrap()
    });
    time("list + resolve", 0, || {
        other.list().unwrap();
        other.resolve("bench:top").unwrap()
    });
    let _ = std::io::stdout().flush();
    let _ = fs::remove_dir_all(&t);
}

fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn tempfile_dir(base: &Path) -> PathBuf {
    let d = base.join(format!("skiff-image-bench-{}", std::process::id()));
    fs::create_dir_all(&d).unwrap();
    d
}
