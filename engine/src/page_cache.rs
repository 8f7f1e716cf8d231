//! A model file's page cache in huge folios, so that its mapping is in 2 MiB pages. A generated token streams every
//! weight once; through 4 KiB pages that is a TLB miss every 4 KiB. The mapping asks for huge pages
//! ([`GgufFile::open`](crate::gguf::GgufFile::open)), but Linux maps a file in 2 MiB pages only where its page cache
//! holds the bytes in 2 MiB folios, and it keeps the folios it has: a file just downloaded or copied in small writes is
//! cached in small ones, and maps in 4 KiB pages until it leaves the cache. Intel Xeon (2 vCPUs, family 6 model 167),
//! Linux 6.18 on ext4, two threads, the 1B-shaped Q4_K_M file: a copy written in 16 KiB writes was 0% in huge pages and
//! generated 25–28 tok/s, where the same file read back into the cache through the mapping was 98% in huge pages and
//! generated 32; with the cache in the state a day of other programs left it (84%), per-step timers (a throwaway) had
//! the output read at 24.4–24.7 GB/s and the Q4_K feed-forward down weights at 22.8–23.5, against 27.8 and 24.6–24.9
//! once it had been dropped and read again.
//!
//! [`settle`] moves such a file into huge folios before a model first generates (as its first context is made,
//! `Model::settle_page_cache`). It maps every page (`MADV_POPULATE_READ`, which reads the file as the first token would
//! have), finds the 2 MiB chunks not mapped in huge pages (`PAGEMAP_SCAN`, Linux 6.7 and later), drops them from the
//! page cache (`POSIX_FADV_DONTNEED`) and maps them again: the faults of a mapping that asks for huge pages read ahead
//! in 2 MiB folios. The first chunk goes alone, as a test: where it comes back in small pages (a file system without
//! large folios, a dirty page, memory too fragmented for a 2 MiB folio), nothing more is dropped. Pages another program
//! maps stay in the cache whatever we ask, and ours then map them again as they were. The bytes never change: the file
//! is only read.

use std::fs::File;
use std::ops::Range;

use memmap2::Mmap;

/// A huge page's span (a page-middle-directory entry's on x86-64, and on aarch64 with 4 KiB pages): the chunks
/// that [`settle`] checks and reads again.
pub const CHUNK: usize = 2 << 20;

/// What [`settle`] found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Settled {
    /// Bytes checked: the mapping's whole 2 MiB chunks.
    pub checked: u64,
    /// Of those, the bytes mapped in huge pages when it started.
    pub huge_before: u64,
    /// And once the chunks in small pages were read again.
    pub huge_after: u64,
    /// Bytes dropped from the page cache and read again.
    pub reread: u64,
    /// How long it all took, mapping every page included.
    pub seconds: f64,
}

/// Moves the chunks of `map` (a read-only mapping of all of `file`, asked for in huge pages) that are mapped in
/// small pages into huge ones, as the module's notes tell. None where there is nothing to check or the OS cannot
/// tell: a mapping shorter than a chunk or not aligned to one, a file larger than the memory available, a kernel
/// older than Linux 6.7, transparent huge pages turned off, or another OS.
pub fn settle(file: &File, map: &Mmap) -> Option<Settled> {
    #[cfg(target_os = "linux")]
    return linux::settle(file, map);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, map);
        None
    }
}

/// The runs of consecutive chunk indices in `chunks` (ascending), as ranges.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn runs(chunks: &[usize]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for &c in chunks {
        match runs.last_mut() {
            Some(r) if r.end == c => r.end = c + 1,
            _ => runs.push(c..c + 1),
        }
    }
    runs
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::io;
    use std::ops::Range;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    use memmap2::{Advice, Mmap, UncheckedAdvice};

    use super::{runs, Settled, CHUNK};

    pub(super) fn settle(file: &File, map: &Mmap) -> Option<Settled> {
        let start = Instant::now();
        let base = map.as_ptr() as usize;
        let chunks = map.len() / CHUNK;
        if chunks == 0 || !base.is_multiple_of(CHUNK) || !fits_in_memory(map.len()) || huge_pages_off() {
            return None;
        }
        map.advise_range(Advice::PopulateRead, 0, chunks * CHUNK).ok()?;
        let small = small_chunks(base, 0..chunks).ok()?;
        let mut reread = 0;
        let mut left = small.len();
        if let Some(&first) = small.first() {
            read_again(file, map, first..first + 1);
            reread += CHUNK;
            if small_chunks(base, first..first + 1).ok()?.is_empty() {
                for run in runs(&small[1..]) {
                    read_again(file, map, run.clone());
                    reread += run.len() * CHUNK;
                }
                left = small_chunks(base, 0..chunks).ok()?.len();
            }
        }
        let bytes = |n: usize| (n * CHUNK) as u64;
        Some(Settled {
            checked: bytes(chunks),
            huge_before: bytes(chunks - small.len()),
            huge_after: bytes(chunks - left),
            reread: reread as u64,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Drops chunks `chunks` of `map` from this process's page tables and from the page cache, then maps them
    /// again. Each step is a hint; where one is refused, the chunks are as they were.
    fn read_again(file: &File, map: &Mmap, chunks: Range<usize>) {
        let (off, len) = (chunks.start * CHUNK, chunks.len() * CHUNK);
        // SAFETY: the mapping is a read-only one of a file that PocketLM never writes through it: dropping its page
        // table entries discards nothing, and the next read maps the same bytes again from the page cache or the
        // file (as `pages::release` does).
        unsafe {
            let _ = map.unchecked_advise_range(UncheckedAdvice::DontNeed, off, len);
        }
        let (o, l) = (off as libc::off_t, len as libc::off_t);
        // SAFETY: a system call on an open file descriptor, with no memory passed.
        let _ = unsafe { libc::posix_fadvise(file.as_raw_fd(), o, l, libc::POSIX_FADV_DONTNEED) };
        let _ = map.advise_range(Advice::PopulateRead, off, len);
    }

    /// Whether transparent huge pages are turned off (`never`): then no chunk could come back in a huge page.
    fn huge_pages_off() -> bool {
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        setting.contains("[never]")
    }

    /// Whether `len` bytes fit in the memory Linux counts as available (free, or cache it can reclaim): a file that
    /// does not fit would not stay in the cache, in huge folios or small ones.
    fn fits_in_memory(len: usize) -> bool {
        let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let line = info.lines().find_map(|l| l.strip_prefix("MemAvailable:"));
        let kb = line.and_then(|v| v.trim().strip_suffix("kB")).and_then(|v| v.trim().parse::<u64>().ok());
        kb.is_some_and(|kb| len as u64 <= kb.saturating_mul(1024))
    }

    /// `struct pm_scan_arg` of Linux's `PAGEMAP_SCAN` (include/uapi/linux/fs.h).
    #[repr(C)]
    struct ScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    /// `struct page_region`: pages `start..end` (addresses) of the same categories.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Region {
        start: u64,
        end: u64,
        categories: u64,
    }

    /// The category of pages mapped in huge pages.
    const PAGE_IS_HUGE: u64 = 1 << 6;

    /// `_IOWR('f', 16, struct pm_scan_arg)`: read and write, 96 bytes of argument, type `f`, number 16.
    const PAGEMAP_SCAN: u64 = (3 << 30) | ((std::mem::size_of::<ScanArg>() as u64) << 16) | ((b'f' as u64) << 8) | 16;

    /// The chunks among `chunks` (indices of 2 MiB chunks from `base`, this process's memory) with a page that is
    /// not mapped in a huge page, in order; an error where the kernel has no `PAGEMAP_SCAN`.
    pub(super) fn small_chunks(base: usize, chunks: Range<usize>) -> io::Result<Vec<usize>> {
        let pagemap = File::open("/proc/self/pagemap")?;
        let mut regions = [Region::default(); 64];
        let (mut at, end) = ((base + chunks.start * CHUNK) as u64, (base + chunks.end * CHUNK) as u64);
        let mut small: Vec<usize> = Vec::new();
        while at < end {
            let mut arg = ScanArg {
                size: std::mem::size_of::<ScanArg>() as u64,
                flags: 0,
                start: at,
                end,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: regions.len() as u64,
                max_pages: 0,
                // Pages whose "huge" category is unset.
                category_inverted: PAGE_IS_HUGE,
                category_mask: PAGE_IS_HUGE,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_HUGE,
            };
            // SAFETY: the argument is a `pm_scan_arg` of its stated size, and `vec` has room for `vec_len`
            // regions, which is all the kernel writes; it reads this process's page tables, never its memory.
            let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            for r in &regions[..(n as usize).min(regions.len())] {
                let chunk = |a: u64| (a.clamp(at, end) as usize - base) / CHUNK;
                for c in chunk(r.start)..=chunk(r.end.max(r.start + 1) - 1) {
                    if small.last().is_none_or(|&l| l < c) {
                        small.push(c);
                    }
                }
            }
            if arg.walk_end <= at {
                break;
            }
            at = arg.walk_end;
        }
        Ok(small)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_chunks_are_consecutive_indices() {
        assert_eq!(runs(&[]), Vec::<Range<usize>>::new());
        assert_eq!(runs(&[3]), vec![3..4]);
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), vec![0..3, 5..6, 7..9]);
    }

    /// A file written in small writes, mapped as a model is and settled: the mapping's bytes are the file's, the
    /// counts add up, and where the kernel tells, the chunks it reports in small pages are those smaps does not
    /// count as mapped in huge pages.
    #[test]
    fn settling_keeps_the_bytes_and_counts_whole_chunks() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("pocketlm-settle-{}.bin", std::process::id()));
        let len = 3 * CHUNK + 12345;
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        {
            let mut f = File::create(&path).unwrap();
            for piece in bytes.chunks(16 << 10) {
                f.write_all(piece).unwrap();
            }
            f.sync_all().unwrap();
        }
        let file = File::open(&path).unwrap();
        // SAFETY: a file of this test's own, which nothing else writes.
        let map = unsafe { Mmap::map(&file) }.unwrap();
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        let settled = settle(&file, &map);
        assert!(map[..] == bytes[..], "the mapping's bytes changed");
        std::fs::remove_file(&path).unwrap();
        let Some(s) = settled else {
            eprintln!("not settled here (alignment, kernel or OS): skipped");
            return;
        };
        assert_eq!(s.checked, 3 * CHUNK as u64);
        assert!(s.huge_before <= s.checked && s.huge_after <= s.checked, "{s:?}");
        assert!(s.reread <= s.checked - s.huge_before && s.reread.is_multiple_of(CHUNK as u64), "{s:?}");
        assert_eq!(s.reread == 0, s.huge_before == s.checked, "{s:?}");
        if let Some((_, pmd)) = crate::pages::huge_mapped(map.as_ptr()) {
            assert_eq!(pmd, s.huge_after, "smaps against PAGEMAP_SCAN: {s:?}");
        }
        eprintln!("{s:?}");
    }
}
