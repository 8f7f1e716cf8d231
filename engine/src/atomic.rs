//! Output files that appear only when complete: written to a temporary file beside the destination, flushed and
//! synced, then renamed over it. A dropped (failed or cancelled) [`AtomicFile`] deletes its temporary file, so the
//! final name never holds a half-written model.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A buffered file at a temporary path that becomes `dest` on [`AtomicFile::commit`].
pub struct AtomicFile {
    dest: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
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
        Ok(AtomicFile { dest, temp, out: Some(BufWriter::with_capacity(1 << 20, file)) })
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
        let result = out.into_inner().map_err(|e| e.into_error()).and_then(|file| {
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
