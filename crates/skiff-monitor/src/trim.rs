//! Giving back the startup pages: a monitor lives as long as its container, idle in `poll`, and
//! the code it ran once while starting (the loader, libc's initialisation, argument parsing)
//! stays mapped and resident. Once the loop is reached, the clean file-backed mappings (text
//! and read-only data never written by this process) are dropped with `MADV_DONTNEED` (their
//! pages stay in the page cache, shared; what the loop needs is faulted back in) and marked
//! `MADV_RANDOM`, which turns off fault-around so a later fault maps one page, not sixteen.
//! A mapping with any private dirty or anonymous page (relocated data, the heap) is never
//! touched: dropping it would lose its contents.

fn field(line: &str, name: &str) -> Option<u64> {
    line.strip_prefix(name)?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Drops the clean, file-backed, non-writable mappings of this process.
pub fn trim() {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else { return };
    let mut cur: Option<(usize, usize, bool)> = None;
    let mut dirty = 0u64;
    let mut anon = 0u64;
    let mut ranges = Vec::new();
    let flush = |cur: &Option<(usize, usize, bool)>, dirty: u64, anon: u64, ranges: &mut Vec<(usize, usize)>| {
        if let Some((start, end, eligible)) = *cur {
            if eligible && dirty == 0 && anon == 0 {
                ranges.push((start, end));
            }
        }
    };
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| first.contains('-') && !first.ends_with(':')) {
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                flush(&cur, dirty, anon, &mut ranges);
                let mut f = line.split_whitespace();
                let perms = f.nth(1).unwrap_or("");
                let path = line.split_whitespace().nth(5).unwrap_or("");
                // File-backed and never writable; not [vdso]/[vvar] or other specials.
                let eligible = path.starts_with('/') && !perms.contains('w') && perms.ends_with('p');
                cur = Some((start, end, eligible));
                dirty = 0;
                anon = 0;
                continue;
            }
        }
        if let Some(v) = field(line, "Private_Dirty:").or_else(|| field(line, "Shared_Dirty:")) {
            dirty += v;
        } else if let Some(v) = field(line, "Anonymous:") {
            anon += v;
        }
    }
    flush(&cur, dirty, anon, &mut ranges);
    for (start, end) in ranges {
        // SAFETY: the range is a clean, read-only, file-backed private mapping of ours: after
        // MADV_DONTNEED its pages read back from the file unchanged on the next access.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}
