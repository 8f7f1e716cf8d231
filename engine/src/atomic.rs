//! Output files that appear only when complete: written to a temporary file beside the destination, flushed and
//! synced, then renamed over it. A dropped (failed or cancelled) [`AtomicFile`] deletes its temporary file, so the
//! final name never holds a half-written model.
//!
//! The bytes reach the file in whole 2 MiB blocks at 2 MiB-aligned offsets ([`Blocks`]), because the page cache
//! keeps what a write brings in folios no larger than the write and its alignment allow (Linux 6.x, on
//! filesystems with large folios: ext4, XFS, btrfs), and a model read soon after, from the cache, is mapped with
//! 2 MiB pages only where its folios are 2 MiB. A generated token streams every weight once: a TLB miss every
//! 4 KiB or every 2 MiB. With a 1 MiB `BufWriter` (before), only tensors larger than the buffer went out in large
//! writes: 26 of SmolLM2-135M Q4_K_M's 103 MB were mapped in 2 MiB pages (`FilePmdMapped` in smaps), 102 now;
//! tg128 in four alternating pairs of runs went from 251–277 to 258–283 tok/s, faster in each pair by 2–6% (Intel
//! Xeon, 2 threads). The 1B-shaped Q4_K_M went from 72% to 98% with no difference beyond noise; a copy of it with
//! no 2 MiB pages at all (`dd bs=1M`) was 3–7% slower than one mapped whole.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The size and alignment of the writes: a PMD page on x86-64, and on aarch64 with 4 KiB pages (with 16 KiB
/// pages, a run of contiguous page-table entries).
const BLOCK: usize = 2 << 20;

/// A buffered writer whose writes to `W` start at multiples of [`BLOCK`] and are whole blocks, but for the last
/// one and for what an explicit [`Write::flush`] pushes out (the writes after that realign at the next block).
pub(crate) struct Blocks<W: Write> {
    inner: W,
    /// Bytes that follow `written`, short of the next block boundary.
    buf: Vec<u8>,
    /// Bytes already handed to `inner`.
    written: u64,
}

impl<W: Write> Blocks<W> {
    pub(crate) fn new(inner: W) -> Self {
        Blocks { inner, buf: Vec::new(), written: 0 }
    }

    /// Writes out the buffered bytes.
    fn drain(&mut self) -> io::Result<()> {
        self.inner.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes out everything and returns the inner writer.
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.drain()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Blocks<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = self.written + self.buf.len() as u64;
        let room = BLOCK - (end % BLOCK as u64) as usize;
        if self.buf.is_empty() && room == BLOCK && data.len() >= BLOCK {
            // Whole blocks at a boundary: straight from the caller's bytes.
            let n = data.len() / BLOCK * BLOCK;
            self.inner.write_all(&data[..n])?;
            self.written += n as u64;
            return Ok(n);
        }
        let take = data.len().min(room);
        self.buf.extend_from_slice(&data[..take]);
        if take == room {
            self.drain()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.inner.flush()
    }
}

/// A buffered file at a temporary path that becomes `dest` on [`AtomicFile::commit`].
pub struct AtomicFile {
    dest: PathBuf,
    temp: PathBuf,
    out: Option<Blocks<File>>,
}

impl AtomicFile {
    /// Creates `.NAME.partial-PID` in the destination's directory.
    pub fn create(dest: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let dest = dest.as_ref().to_path_buf();
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name"))?;
        let temp = dest.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
        let file = File::create(&temp)?;
        Ok(AtomicFile { dest, temp, out: Some(Blocks::new(file)) })
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes, syncs and renames the temporary file to the destination. If any step fails the temporary file is
    /// removed, as on drop.
    pub fn commit(mut self) -> io::Result<()> {
        let out = self.out.take().expect("an AtomicFile is committed once");
        let result = out.into_inner().and_then(|file| {
            file.sync_all()?;
            drop(file);
            fs::rename(&self.temp, &self.dest)
        });
        if result.is_err() {
            // `out` is gone, so Drop will not clean up: do it here.
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().expect("not committed").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every write it is handed: (offset, length), and the bytes.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<(usize, usize)>,
        bytes: Vec<u8>,
    }

    impl Write for Recorder {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.writes.push((self.bytes.len(), data.len()));
            self.bytes.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn pattern(n: usize, seed: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + seed) as u8).collect()
    }

    /// Odd-sized pieces, large and small, reach the writer whole and in order, in block-aligned writes (whole
    /// blocks or runs of them, straight through when large) until a flush; after it they realign.
    #[test]
    fn writes_are_whole_aligned_blocks_but_the_last() {
        let pieces = [pattern(7, 1), pattern(3 * BLOCK + 5, 2), pattern(1, 3), pattern(BLOCK - 10, 4)];
        let mut out = Blocks::new(Recorder::default());
        let mut expected = Vec::new();
        for p in &pieces {
            out.write_all(p).unwrap();
            expected.extend_from_slice(p);
        }
        let before_flush = out.inner.writes.len();
        out.flush().unwrap();
        let after = [pattern(5 * BLOCK + 2, 5), pattern(9, 6)];
        for p in &after {
            out.write_all(p).unwrap();
            expected.extend_from_slice(p);
        }
        let rec = out.into_inner().unwrap();
        assert_eq!(rec.bytes, expected);
        let (flushed, last) = (rec.writes[before_flush], *rec.writes.last().unwrap());
        assert!(flushed.1 % BLOCK != 0 && last.1 % BLOCK != 0, "{:?}", rec.writes);
        for &(at, len) in &rec.writes {
            if (at, len) == flushed || (at, len) == last {
                continue;
            }
            // After the flush, one write reaches the next boundary; all others start at one.
            let realign = at == flushed.0 + flushed.1 && (at + len) % BLOCK == 0;
            assert!(realign || (at % BLOCK == 0 && len % BLOCK == 0), "write of {len} at {at}: {:?}", rec.writes);
        }
        assert!(rec.writes.iter().any(|&(_, len)| len > BLOCK), "large pieces go straight through");
    }

    /// A committed file holds every byte under its final name and no temporary file is left; a dropped one
    /// leaves nothing.
    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = std::env::temp_dir().join(format!("pocketlm-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("out.bin");
        let bytes = pattern(BLOCK + 12345, 7);
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(&bytes[..100]).unwrap();
        f.write_all(&bytes[100..]).unwrap();
        let temp = f.temp_path().to_path_buf();
        assert!(temp.exists() && !dest.exists());
        f.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), bytes);
        assert!(!temp.exists());
        let mut g = AtomicFile::create(dir.join("dropped.bin")).unwrap();
        g.write_all(&bytes).unwrap();
        let temp = g.temp_path().to_path_buf();
        drop(g);
        assert!(!temp.exists() && !dir.join("dropped.bin").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
