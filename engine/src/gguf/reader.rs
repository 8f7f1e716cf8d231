//! Reading GGUF: the file is memory-mapped and parsed once; tensor data is handed out as borrowed slices.
//!
//! Every file is treated as hostile. Before anything is allocated, its size is checked against the bytes that
//! are left (a string's length, an array's or the tensor list's count times the smallest encoding of one item),
//! so a forged count fails at once with an error instead of an allocation of terabytes. Tensors are checked for a
//! known type, a sane shape, whole blocks per row, aligned offsets inside the data section and no overlaps.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::{Ctx, Fault, GgufError};
use super::value::{Value, ValueType};
use super::{shape_fits_i64, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS};
use crate::quant::GgmlType;

/// One tensor's description. `dims[0]` is the row length (ggml's ne[0], innermost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Bytes of data (whole blocks; checked not to overflow).
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    /// Rows of `dims[0]` weights.
    pub fn n_rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }
}

enum Backing {
    /// The file's mapping, and the file (for hints about its page cache, [`GgufFile::settle_in_huge_pages`]).
    Mmap(Mmap, File),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m, _) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file. Metadata stays in file order; tensor data is borrowed from the mapping.
pub struct GgufFile {
    path: PathBuf,
    backing: Backing,
    version: u32,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl GgufFile {
    /// Maps and parses the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| GgufError::new(path, Fault::Io(e)))?;
        // SAFETY: the mapping is read-only and private to this process. Another process truncating or rewriting
        // the file while it is mapped could change or fault the bytes under us; that is the contract of every
        // mmap-based model loader (llama.cpp's included), and PocketLM writes files only through temp + rename,
        // so its own outputs are never changed in place.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| GgufError::new(path, Fault::Io(e)))?;
        // Ask for the file's pages in 2 MiB folios, mapped as such (Linux's transparent huge pages): a generated token
        // streams every weight once, and with 4 KiB pages that is a TLB miss every 4 KiB. It takes effect where the
        // page cache does not hold the file yet (the first run after a boot, or once the file is evicted), and on files
        // PocketLM wrote, which the cache holds in 2 MiB folios (`crate::atomic`); a model's first context moves the
        // rest (`GgufFile::settle_in_huge_pages`). The 1B-shaped Q4_K_M on Zen 4, tg32 medians of six runs in each
        // state of the page cache: two threads 37.2 tok/s so mapped against 33.6; one thread 21.1 against 19.3 in one
        // series, 22.4 both in another. Only a hint: a kernel without THP for files ignores it.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Self::from_backing(path.to_path_buf(), Backing::Mmap(map, file))
    }

    /// Parses GGUF bytes held in memory; `label` names them in errors (tests, fuzzing, downloads).
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::from_backing(label.into(), Backing::Owned(bytes))
    }

    fn from_backing(path: PathBuf, backing: Backing) -> Result<GgufFile, GgufError> {
        let label = path.display().to_string();
        let parsed = parse(&label, backing.bytes())?;
        Ok(GgufFile {
            path,
            backing,
            version: parsed.version,
            key_index: parsed.metadata.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect(),
            metadata: parsed.metadata,
            tensor_index: parsed.tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect(),
            tensors: parsed.tensors,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn version(&self) -> u32 {
        self.version
    }
    pub fn file_size(&self) -> u64 {
        self.backing.bytes().len() as u64
    }
    pub fn alignment(&self) -> u64 {
        self.alignment
    }
    /// Where the data section starts in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }
    /// Key–value pairs in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(Value::as_f32)
    }
    /// `general.architecture`, e.g. "llama".
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }
    /// Lets the OS drop bytes `range` of tensor `t` from memory after they have been read (see [`crate::pages`]).
    pub fn release(&self, t: &TensorInfo, range: std::ops::Range<usize>) {
        if let Backing::Mmap(map, _) = &self.backing {
            crate::pages::release(map, (self.data_offset + t.offset) as usize + range.start, range.len());
        }
    }

    /// The share of the file's mapping that is mapped in huge pages so far (see [`crate::pages::huge_mapped`]):
    /// close to 1.0 once every weight was read through 2 MiB pages (the file's ends short of a whole 2 MiB stay in
    /// small ones). None for bytes held in memory, or where the OS does not tell.
    pub fn huge_page_share(&self) -> Option<f64> {
        let Backing::Mmap(map, _) = &self.backing else { return None };
        crate::pages::huge_share(map.as_ptr())
    }

    /// Moves the parts of the file that its page cache holds in small folios into huge ones, so that the mapping
    /// is in 2 MiB pages ([`crate::page_cache::settle`]): for a model about to stream its weights. Maps every page.
    /// None for bytes held in memory, or where the OS cannot tell.
    pub fn settle_in_huge_pages(&self) -> Option<crate::page_cache::Settled> {
        match &self.backing {
            Backing::Mmap(map, file) => crate::page_cache::settle(file, map),
            Backing::Owned(_) => None,
        }
    }

    /// The tensor's bytes, borrowed from the mapping (bounds were checked when the file was opened).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + t.offset) as usize;
        &self.backing.bytes()[start..start + t.n_bytes as usize]
    }
}

struct Parsed {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_offset: u64,
}

/// A bounds-checked little-endian cursor over the file's bytes.
struct Cursor<'a> {
    ctx: Ctx<'a>,
    bytes: &'a [u8],
    pos: usize,
    /// Metadata values (keys and array items) this file may still make us hold: see [`Cursor::charge`].
    budget: u64,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], GgufError> {
        if n > self.left() {
            return Err(self.ctx.err(Fault::Truncated { offset: self.pos as u64, what, need: n, left: self.left() }));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        Ok(s.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items whose encodings take at least `min_size` bytes each: refused unless they could all fit.
    fn count(&mut self, what: &'static str, min_size: u64) -> Result<u64, GgufError> {
        let offset = self.pos as u64;
        let count = self.u64(what)?;
        if count.checked_mul(min_size).is_none_or(|b| b > self.left()) {
            return Err(self.ctx.err(Fault::CountTooLarge { offset, what, count, left: self.left() }));
        }
        Ok(count)
    }

    /// Charges `count` parsed values against the file's budget. A value in memory takes up to 80 times its
    /// smallest encoding (a one-byte array item becomes a 32-byte `Value`), so the bytes-left check alone would
    /// let a 2 GB file ask for 64 GB; this bounds what any file can make us hold.
    fn charge(&mut self, offset: u64, what: &'static str, count: u64) -> Result<(), GgufError> {
        if count > self.budget {
            return Err(self.ctx.err(Fault::LimitExceeded { offset, what, count, limit: MAX_VALUES }));
        }
        self.budget -= count;
        Ok(())
    }

    fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let offset = self.pos as u64;
        let len = self.count(what, 1)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.ctx.err(Fault::BadUtf8 { offset, what }))
    }

    fn value_type(&mut self) -> Result<ValueType, GgufError> {
        let offset = self.pos as u64;
        let id = self.u32("value type")?;
        ValueType::from_id(id).ok_or_else(|| self.ctx.err(Fault::UnknownValueType { offset, id }))
    }

    fn value(&mut self, ty: ValueType, depth: usize) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>("u8 value")?[0]),
            ValueType::I8 => Value::I8(self.array::<1>("i8 value")?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array("u16 value")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array("i16 value")?)),
            ValueType::U32 => Value::U32(self.u32("u32 value")?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array("i32 value")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array("f32 value")?)),
            ValueType::U64 => Value::U64(self.u64("u64 value")?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array("i64 value")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array("f64 value")?)),
            ValueType::Bool => {
                let offset = self.pos as u64;
                match self.array::<1>("bool value")?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    value => return Err(self.ctx.err(Fault::BadBool { offset, value })),
                }
            }
            ValueType::String => Value::String(self.string("string value")?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.ctx.err(Fault::TooDeep { offset: self.pos as u64, max: MAX_ARRAY_DEPTH }));
                }
                let elem = self.value_type()?;
                let offset = self.pos as u64;
                let n = self.count("array element", elem.min_encoded_size())?;
                self.charge(offset, "array element", n)?;
                // The count was checked against the bytes left and the value budget, so this reservation is bounded.
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }
}

/// Tensors a file may declare: the largest models have tens of thousands (a 1T-parameter MoE about 100k).
const MAX_TENSORS: u64 = 1 << 20;
/// Metadata values (keys plus array items) a file may hold: real vocabularies need about a million (262k tokens
/// with their scores and types, plus merges); at ≤ 80 bytes each in memory this bounds metadata near 350 MB.
const MAX_VALUES: u64 = 1 << 22;

/// The smallest tensor info: name length, n_dims, one dim, type, offset.
const MIN_TENSOR_INFO: u64 = 8 + 4 + 8 + 4 + 8;
/// The smallest key–value pair: key length, value type, a one-byte value.
const MIN_KV: u64 = 8 + 4 + 1;

fn parse(label: &str, bytes: &[u8]) -> Result<Parsed, GgufError> {
    let ctx = Ctx(label);
    let mut c = Cursor { ctx: Ctx(label), bytes, pos: 0, budget: MAX_VALUES };
    let magic: [u8; 4] = c.array("magic")?;
    if magic != MAGIC {
        return Err(ctx.err(Fault::BadMagic(magic)));
    }
    let version = c.u32("version")?;
    if version != 2 && version != 3 {
        return Err(ctx.err(Fault::UnsupportedVersion(version)));
    }
    let n_tensors = c.count("tensor", MIN_TENSOR_INFO)?;
    if n_tensors > MAX_TENSORS {
        return Err(ctx.err(Fault::LimitExceeded { offset: 8, what: "tensor", count: n_tensors, limit: MAX_TENSORS }));
    }
    let n_kv = c.count("key-value", MIN_KV)?;
    c.charge(16, "key-value", n_kv)?;

    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut seen = HashMap::with_capacity(n_kv as usize);
    for _ in 0..n_kv {
        let key = c.string("key")?;
        let ty = c.value_type()?;
        let value = c.value(ty, 0)?;
        if seen.insert(key.clone(), ()).is_some() {
            return Err(ctx.err(Fault::DuplicateKey(key)));
        }
        metadata.push((key, value));
    }
    let alignment = match metadata.iter().find(|(k, _)| k == KEY_ALIGNMENT) {
        None => DEFAULT_ALIGNMENT,
        // llama.cpp accepts only a u32 here; a file it would refuse is refused.
        Some((_, Value::U32(a))) if a.is_power_of_two() => u64::from(*a),
        Some((_, v)) => return Err(ctx.err(Fault::BadAlignment(format!("{} {}", v.type_label(), v)))),
    };

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut names = HashMap::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let name = c.string("tensor name")?;
        let n_dims = c.u32("dimension count")?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(ctx.err(Fault::BadDimCount { name, n_dims }));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64("dimension")?);
        }
        let id = c.u32("tensor type")?;
        let ty = GgmlType::from_id(id).ok_or_else(|| ctx.err(Fault::UnknownTensorType { name: name.clone(), id }))?;
        let offset = c.u64("tensor offset")?;
        // ggml holds shapes as int64: every dimension, the element count and the row count must fit.
        if !shape_fits_i64(&dims) {
            return Err(ctx.err(Fault::ShapeOverflow { name, dims }));
        }
        let n_elements: u64 = dims.iter().product();
        if dims[0] % ty.block_size() as u64 != 0 {
            return Err(ctx.err(Fault::PartialBlock { name, ne0: dims[0], ty, block: ty.block_size() }));
        }
        let Some(n_bytes) = ty.row_size(n_elements) else {
            return Err(ctx.err(Fault::ShapeOverflow { name, dims }));
        };
        if names.insert(name.clone(), ()).is_some() {
            return Err(ctx.err(Fault::DuplicateTensor(name)));
        }
        tensors.push(TensorInfo { name, dims, ty, offset, n_bytes });
    }

    // The data section starts at the next multiple of the alignment; a file without tensors may end before it.
    let data_offset = (c.pos as u64).next_multiple_of(alignment);
    if tensors.is_empty() {
        return Ok(Parsed { version, metadata, tensors, alignment, data_offset });
    }
    let file_len = bytes.len() as u64;
    let data_len = file_len.saturating_sub(data_offset);
    if data_offset > file_len {
        return Err(ctx.err(Fault::Truncated { offset: c.pos as u64, what: "padding before tensor data", need: data_offset - c.pos as u64, left: c.left() }));
    }
    for t in &tensors {
        if t.offset % alignment != 0 {
            return Err(ctx.err(Fault::Misaligned { name: t.name.clone(), offset: t.offset, alignment }));
        }
        let end = t.offset.checked_add(t.n_bytes);
        if end.is_none_or(|e| e > data_len) {
            return Err(ctx.err(Fault::OutOfBounds { name: t.name.clone(), start: t.offset, end: end.unwrap_or(u64::MAX), len: data_len }));
        }
    }
    // Zero-size tensors hold no bytes, so they overlap nothing wherever their offset points.
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.n_bytes > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        if pair[0].offset + pair[0].n_bytes > pair[1].offset {
            return Err(ctx.err(Fault::Overlap { first: pair[0].name.clone(), second: pair[1].name.clone() }));
        }
    }
    Ok(Parsed { version, metadata, tensors, alignment, data_offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&n_tensors.to_le_bytes());
        b.extend_from_slice(&n_kv.to_le_bytes());
        b
    }

    #[test]
    fn a_file_cannot_make_us_hold_more_values_than_the_budget() {
        // One key holding MAX_VALUES one-byte items: the bytes are all there, but 32 bytes per parsed item would
        // be 134 MB held for a 4 MB file, and a larger file proportionally more.
        let mut b = header(0, 1);
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'k');
        b.extend_from_slice(&(ValueType::Array as u32).to_le_bytes());
        b.extend_from_slice(&(ValueType::U8 as u32).to_le_bytes());
        b.extend_from_slice(&MAX_VALUES.to_le_bytes());
        b.resize(b.len() + MAX_VALUES as usize, 7);
        let err = GgufFile::from_bytes("big.gguf", b).err().expect("refused");
        assert!(matches!(err.fault, Fault::LimitExceeded { what: "array element", .. }), "{err}");
        assert!(err.to_string().starts_with("big.gguf: at byte 41:"), "{err}");
    }

    /// The `VmFlags` of the area of `/proc/self/smaps` that holds address `at`.
    #[cfg(target_os = "linux")]
    fn vm_flags(at: usize) -> Option<Vec<String>> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let fields = crate::pages::area_fields(&smaps, at)?;
        let flags = fields.iter().find(|(k, _)| *k == "VmFlags")?.1;
        Some(flags.split_whitespace().map(str::to_string).collect())
    }

    /// The mapping of an opened file is advised for huge pages: its area of `/proc/self/smaps` carries the flag
    /// `hg` (MADV_HUGEPAGE). Skipped where the advice does not reach the kernel: one without transparent huge
    /// pages refuses it, and qemu's user-mode emulation, which runs the aarch64 tests, drops it. An anonymous area
    /// advised the same way first tells which.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_mapping_asks_for_huge_pages() {
        let control = memmap2::MmapMut::map_anon(4 << 20).unwrap();
        let hg = |flags: Option<Vec<String>>| flags.expect("the area is in smaps").iter().any(|f| f == "hg");
        if control.advise(memmap2::Advice::HugePage).is_err() || !hg(vm_flags(control.as_ptr() as usize)) {
            eprintln!("no transparent huge pages, or the advice does not reach the kernel: skipped");
            return;
        }
        let mut w = crate::gguf::GgufWriter::new(Vec::new(), "huge.gguf");
        w.add_tensor_info("t".to_string(), &[1 << 20], crate::quant::GgmlType::F32).unwrap();
        w.write_tensor_data("t", &vec![0u8; 4 << 20]).unwrap();
        let path = std::env::temp_dir().join(format!("pocketlm-huge-{}.gguf", std::process::id()));
        std::fs::write(&path, w.finish().unwrap()).unwrap();
        let file = GgufFile::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let flags = vm_flags(file.tensor_data(&file.tensors()[0]).as_ptr() as usize);
        assert!(hg(flags.clone()), "not advised: {flags:?}");
    }

    #[test]
    fn tensor_count_is_limited_before_anything_is_reserved() {
        let mut b = header(MAX_TENSORS + 1, 0);
        b.resize(b.len() + (MAX_TENSORS as usize + 1) * MIN_TENSOR_INFO as usize, 0);
        let err = GgufFile::from_bytes("many.gguf", b).err().expect("refused");
        assert!(matches!(err.fault, Fault::LimitExceeded { what: "tensor", .. }), "{err}");
    }
}
