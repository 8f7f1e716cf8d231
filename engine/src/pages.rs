//! The pages of memory mappings: handing back those of a read-only file mapping once they have been read, so that
//! streaming a model through an mmap keeps resident memory at one slice of it rather than the whole file; and how
//! much of a mapping is mapped in huge pages, which a generated token, streaming every weight, runs faster on.

use memmap2::{Mmap, MmapMut};

/// Drops the pages of `map[start..start + len]` from this process's resident set. The mapping stays valid: a later
/// read faults the bytes back in from the file (or the page cache). A no-op where the OS has no `madvise`.
pub fn release(map: &Mmap, start: usize, len: usize) {
    if len == 0 || start.checked_add(len).is_none_or(|end| end > map.len()) {
        return;
    }
    #[cfg(unix)]
    // SAFETY: the mapping is private, read-only and never written, so MADV_DONTNEED cannot discard data: dropped
    // pages are re-read from the unchanged file on the next access, and no Rust reference sees different bytes.
    // memmap2 widens the range to whole pages; neighbouring bytes on those pages are refetched the same way.
    unsafe {
        let _ = map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len);
    }
}

/// `len` bytes of anonymous memory (zeros), asked for in huge pages where the OS has them (Linux's transparent huge
/// pages, `MADV_HUGEPAGE`), as a model file's mapping is ([`crate::gguf::GgufFile::open`]): for a bandwidth probe
/// that should read memory the way a generated token reads the weights, and for the KV cache. Only a hint: without
/// it, 4 KiB pages.
pub fn anonymous_huge(len: usize) -> std::io::Result<MmapMut> {
    let map = MmapMut::map_anon(len)?;
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(map)
}

/// Of the memory area that holds address `at`: its size and the bytes of it mapped in huge pages (2 MiB on x86-64,
/// through page-middle-directory entries: `FilePmdMapped` for a file, `AnonHugePages` for anonymous memory), from
/// `/proc/self/smaps`. Only pages touched so far count as mapped. None where there is no smaps (other OSes) or
/// nothing holds `at`.
pub fn huge_mapped(at: *const u8) -> Option<(u64, u64)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let fields = area_fields(&smaps, at as usize)?;
    let kb = |key: &str| -> u64 {
        let value = fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        value.and_then(|v| v.strip_suffix("kB")).and_then(|v| v.trim().parse().ok()).unwrap_or(0) * 1024
    };
    Some((kb("Size"), kb("FilePmdMapped") + kb("AnonHugePages") + kb("ShmemPmdMapped")))
}

/// Of the memory area that holds address `at`: the share of it mapped in huge pages ([`huge_mapped`]). None where
/// the OS does not tell, or the area is empty.
pub fn huge_share(at: *const u8) -> Option<f64> {
    let (size, huge) = huge_mapped(at)?;
    (size > 0).then(|| huge as f64 / size as f64)
}

/// The `key: value` lines of the area of a smaps text (`/proc/PID/smaps`) that holds address `at`, up to and
/// including its `VmFlags` line. Each area starts with a line `start-end perms offset dev inode [path]`.
pub fn area_fields(smaps: &str, at: usize) -> Option<Vec<(&str, &str)>> {
    let mut fields = None;
    for line in smaps.lines() {
        let range = line.split(' ').next().and_then(|r| r.split_once('-'));
        let hex = |h| usize::from_str_radix(h, 16).ok();
        let bounds = range.and_then(|(a, b)| Some((hex(a)?, hex(b)?)));
        if let Some((start, end)) = bounds {
            if fields.is_some() {
                break;
            }
            if (start..end).contains(&at) {
                fields = Some(Vec::new());
            }
        } else if let (Some(f), Some((key, value))) = (fields.as_mut(), line.split_once(':')) {
            f.push((key, value.trim()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0200000 r--p 00000000 fd:01 1234                       /usr/bin/pocketlm
Size:               2048 kB
FilePmdMapped:         0 kB
VmFlags: rd mr mw me
7f0000000000-7f0030000000 r--p 00000000 fd:01 5678                       /models/a b: c.gguf
Size:             786432 kB
Rss:              786432 kB
AnonHugePages:         0 kB
FilePmdMapped:    770048 kB
VmFlags: rd mr me ms hg
7f0030000000-7f0030001000 rw-p 00000000 00:00 0
Size:                  4 kB
VmFlags: rd wr mr mw me ac
";

    /// The area that holds the address, and only its lines, even under a path with a colon and a space.
    #[test]
    fn the_area_holding_an_address_is_found() {
        let f = area_fields(SMAPS, 0x7f0000001000).unwrap();
        assert_eq!(f.first(), Some(&("Size", "786432 kB")));
        assert_eq!(f.last(), Some(&("VmFlags", "rd mr me ms hg")));
        assert_eq!(f.len(), 5);
        let last = area_fields(SMAPS, 0x7f0030000fff).unwrap();
        assert_eq!(last, vec![("Size", "4 kB"), ("VmFlags", "rd wr mr mw me ac")]);
        assert!(area_fields(SMAPS, 0x7f0030001000).is_none());
        assert!(area_fields(SMAPS, 0x1000).is_none());
    }

    /// A live anonymous area advised for huge pages and written whole: its size is found, and where the kernel
    /// has transparent huge pages for it (`AnonHugePages` > 0 is up to the kernel), never more than that.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_mapped_reads_this_process() {
        let mut area = memmap2::MmapMut::map_anon(8 << 20).unwrap();
        let _ = area.advise(memmap2::Advice::HugePage);
        area.fill(1);
        let (size, huge) = huge_mapped(area.as_ptr()).expect("the area is in smaps");
        assert!(size >= 8 << 20, "{size}");
        assert!(huge <= size, "{huge} of {size}");
    }
}
