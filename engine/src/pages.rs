//! Handing back the pages of a read-only file mapping once they have been read, so that streaming a model through
//! an mmap keeps resident memory at one slice of it rather than the whole file.

use memmap2::Mmap;

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
