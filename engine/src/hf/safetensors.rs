//! One `.safetensors` file, memory-mapped, its header parsed and checked before anything is read.
//!
//! Layout (huggingface/safetensors `docs`): u64 little-endian header length N, then N bytes of JSON — an object
//! mapping tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` plus an optional `__metadata__` object of
//! strings — then the data area; offsets are relative to the data area's start. We parse the header ourselves (the
//! `safetensors` crate would do, but its errors name no file and it sorts nothing the way llama.cpp's converter
//! sees it): every claim in it is checked against the file's real length before a byte of data is touched, so a
//! hostile file yields an [`HfError`] naming the file and tensor, never a panic or an allocation the file cannot back.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Deserialize;

use super::HfError;

/// Largest header we parse. The safetensors crate refuses headers over 100 MB for the same reason: the length is
/// read from the file and would otherwise size an allocation. Real headers are a few hundred KB at most.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Most dimensions a tensor may have. Transformer weights have 1 to 3; GGUF itself allows 4.
pub const MAX_DIMS: usize = 8;

/// Element types of a safetensors tensor, as spelled in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    F16,
    BF16,
}

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        match s {
            "F32" => Some(Dtype::F32),
            "F16" => Some(Dtype::F16),
            "BF16" => Some(Dtype::BF16),
            _ => None,
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one tensor lives in its file. `shape` is in PyTorch order (outermost first, last dimension contiguous).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    /// Byte range inside the file (already offset by the header), checked to lie inside it.
    pub start: usize,
    pub end: usize,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A mapped safetensors file and its validated header. Tensors are keyed by name, so iteration is in name order —
/// the order llama.cpp's converter (gguf-py `SafetensorsLocal`) visits them in.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    tensors: BTreeMap<String, TensorInfo>,
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<SafetensorsFile, HfError> {
        let file = File::open(path).map_err(|e| HfError::io(path, e))?;
        // SAFETY: the map is read-only and every access goes through bounds-checked slices of it. If another
        // process truncates the file while it is mapped, reads past the new end fault (SIGBUS): the usual caveat
        // of memory-mapped model files, accepted by every loader (llama.cpp, safetensors) for the speed it buys.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| HfError::io(path, e))?;
        let tensors = parse_header(path, &mmap)?;
        Ok(SafetensorsFile { path: path.to_path_buf(), mmap, tensors })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.tensors
    }

    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// The raw little-endian bytes of a tensor (range checked when the header was parsed).
    pub fn bytes(&self, info: &TensorInfo) -> &[u8] {
        &self.mmap[info.start..info.end]
    }

    /// Lets the OS drop bytes `range` of a tensor from memory after they have been read (see [`crate::pages`]).
    pub fn release(&self, info: &TensorInfo, range: std::ops::Range<usize>) {
        crate::pages::release(&self.mmap, info.start + range.start, range.len());
    }

    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.mmap.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.mmap.is_empty()
    }
}

/// Parses and checks the header of `bytes` (the whole file). Public to the crate so tests can feed it bytes.
pub(crate) fn parse_header(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, TensorInfo>, HfError> {
    let bad = |reason: String| HfError::Safetensors { file: path.to_path_buf(), tensor: None, reason };
    let bad_tensor = |name: &str, reason: String| HfError::Safetensors {
        file: path.to_path_buf(),
        tensor: Some(name.to_string()),
        reason,
    };

    if bytes.len() < 8 {
        return Err(bad(format!("file is {} bytes, shorter than the 8-byte header length", bytes.len())));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER_BYTES {
        return Err(bad(format!("header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes")));
    }
    let file_len = bytes.len() as u64;
    let data_start = 8 + n;
    if data_start > file_len {
        return Err(bad(format!("header length {n} runs past the end of the file ({file_len} bytes): truncated?")));
    }
    let header = &bytes[8..data_start as usize];
    // The header is UTF-8 JSON, possibly padded with trailing spaces to align the data area.
    let header = std::str::from_utf8(header).map_err(|e| bad(format!("header is not UTF-8: {e}")))?;
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(header).map_err(|e| bad(format!("header is not a JSON object: {e}")))?;

    let data_len = file_len - data_start;
    let mut tensors = BTreeMap::new();
    let mut ranges: Vec<(u64, u64, &str)> = Vec::with_capacity(raw.len());
    for (name, value) in &raw {
        if name == "__metadata__" {
            continue;
        }
        let entry: RawEntry = serde_json::from_value(value.clone())
            .map_err(|e| bad_tensor(name, format!("malformed header entry: {e}")))?;
        let dtype = Dtype::parse(&entry.dtype).ok_or_else(|| HfError::UnsupportedDtype {
            file: path.to_path_buf(),
            tensor: name.clone(),
            dtype: entry.dtype.clone(),
        })?;
        if entry.shape.len() > MAX_DIMS {
            return Err(bad_tensor(name, format!("{} dimensions (at most {MAX_DIMS})", entry.shape.len())));
        }
        let n_elements = entry
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad_tensor(name, format!("shape {:?} overflows", entry.shape)))?;
        let n_bytes = n_elements
            .checked_mul(dtype.size() as u64)
            .ok_or_else(|| bad_tensor(name, format!("shape {:?} overflows", entry.shape)))?;
        let [begin, end] = entry.data_offsets;
        if begin > end || end > data_len {
            return Err(bad_tensor(
                name,
                format!("data offsets [{begin}, {end}] lie outside the {data_len}-byte data area: truncated file?"),
            ));
        }
        if end - begin != n_bytes {
            return Err(bad_tensor(
                name,
                format!(
                    "data offsets [{begin}, {end}] hold {} bytes but {dtype} shape {:?} needs {n_bytes}",
                    end - begin,
                    entry.shape
                ),
            ));
        }
        ranges.push((begin, end, name));
        // Both fit in usize: they are at most the length of a slice we hold.
        let start = (data_start + begin) as usize;
        let stop = (data_start + end) as usize;
        tensors.insert(name.clone(), TensorInfo { dtype, shape: entry.shape, start, end: stop });
    }
    // Overlapping tensors are not memory-unsafe here (the map is read-only) but mean a corrupt or crafted file.
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        let ((_, a_end, a), (b_begin, _, b)) = (w[0], w[1]);
        if b_begin < a_end {
            return Err(bad(format!("tensors {a:?} and {b:?} overlap")));
        }
    }
    Ok(tensors)
}

/// Widens one tensor's little-endian bytes to f32 into `out` (cleared first). BF16 is the top half of an f32, so
/// the shift is exact; F16 goes through `half`, also exact. Never BF16→F16→F32, which would lose range and bits.
pub fn widen_to_f32(dtype: Dtype, bytes: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.resize(bytes.len() / dtype.size(), 0.0);
    widen_into(dtype, bytes, out);
}

/// [`widen_to_f32`] into a slice that holds exactly `bytes.len() / dtype.size()` values (so callers can split a
/// tensor across threads).
pub fn widen_into(dtype: Dtype, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Dtype::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
            }
        }
        Dtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    fn p() -> &'static Path {
        Path::new("x.safetensors")
    }

    #[test]
    fn parses_and_sorts_by_name() {
        let h = r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]},"__metadata__":{"format":"pt"}}"#;
        let t = parse_header(p(), &file(h, &[0; 12])).unwrap();
        assert_eq!(t.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(t["a"].shape, [1, 2]);
        assert_eq!(t["b"].start, 8 + h.len());
    }

    #[test]
    fn rejects_hostile_headers() {
        let cases: &[(&[u8], &str)] = &[
            (&[1, 2, 3], "shorter than"),
            (&u64::MAX.to_le_bytes(), "exceeds the limit"),
            (&[100, 0, 0, 0, 0, 0, 0, 0, b'{'], "past the end"),
        ];
        for (bytes, want) in cases {
            let e = parse_header(p(), bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.contains("x.safetensors"), "{e}");
        }
        let err = |h: &str, data: usize| parse_header(p(), &file(h, &vec![0; data])).unwrap_err().to_string();
        assert!(err(r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 8).contains("outside"));
        assert!(err(r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#, 16).contains("needs 16"));
        assert!(err(r#"{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, 8).contains("I64"));
        assert!(err(r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#, 8)
            .contains("overflows"));
        assert!(err(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12)
            .contains("overlap"));
        assert!(err(r#"[1,2]"#, 0).contains("not a JSON object"));
        assert!(err(r#"{"w":{"dtype":"F32"}}"#, 0).contains("\"w\""));
    }

    #[test]
    fn widening_is_exact() {
        let mut out = Vec::new();
        // BF16 0x3F80 = 1.0, 0xC2F7 = -123.5, 0x7F7F = largest finite BF16 (beyond F16's range).
        widen_to_f32(Dtype::BF16, &[0x80, 0x3F, 0xF7, 0xC2, 0x7F, 0x7F], &mut out);
        assert_eq!(out, [1.0, -123.5, f32::from_bits(0x7F7F_0000)]);
        widen_to_f32(Dtype::F16, &[0x00, 0x3C, 0x01, 0x00], &mut out);
        assert_eq!(out, [1.0, 2f32.powi(-24)]);
        widen_to_f32(Dtype::F32, &1.5f32.to_le_bytes(), &mut out);
        assert_eq!(out, [1.5]);
    }
}
