//! Writing GGUF as a stream: header, metadata and tensor infos first, then each tensor's data in order, so a
//! multi-gigabyte model passes through one tensor (or one slice of rows) at a time.
//!
//! The writer is a small state machine, after gguf-py's: metadata and tensor infos are declared up front (the
//! header needs their counts and every tensor's offset), then [`GgufWriter::write_tensor_data`] takes the tensors'
//! bytes in declaration order, in as many pieces as the caller likes. A wrong byte count, data for a tensor out of
//! order, or a finish with tensors missing is an error, never a silently broken file. Layout follows llama.cpp's
//! `gguf_write_out` (ggml/src/gguf.cpp) and gguf-py's `GGUFWriter`, byte for byte: the tensor infos are followed by
//! zero padding to the alignment even when there are no tensors, and every tensor's data is followed by zero
//! padding up to the next multiple, the last one included. The writer refuses what the reader would refuse (shapes
//! beyond ggml's int64, arrays nested deeper than [`MAX_ARRAY_DEPTH`]), so it never makes a file we cannot open.

use std::collections::HashSet;
use std::io::Write;

use super::error::{Ctx, Fault, GgufError};
use super::value::Value;
use super::{shape_fits_i64, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS};
use crate::quant::GgmlType;

/// ggml keeps tensor names in a 64-byte buffer with its terminating zero: llama.cpp refuses longer names.
const GGML_MAX_NAME: usize = 64;

struct Pending {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    n_bytes: u64,
}

enum State {
    /// Collecting metadata and tensor infos.
    Declaring,
    /// Header written; streaming data of tensor `index`, of which `written` bytes have arrived.
    Data { index: usize, written: u64 },
}

/// Streams one GGUF file into `W`. For files on disk use [`super::AtomicFile`] as `W`, so that nothing appears
/// under the final name until [`GgufWriter::finish`] and the file's own commit succeed.
pub struct GgufWriter<W: Write> {
    out: W,
    label: String,
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<Pending>,
    names: HashSet<String>,
    alignment: u64,
    /// Bytes of the data section so far: every declared tensor padded to `alignment` (checked not to overflow).
    data_size: u64,
    state: State,
    /// Bytes written so far (for padding).
    pos: u64,
}

impl<W: Write> GgufWriter<W> {
    /// A writer into `out`; `label` names the destination in errors.
    pub fn new(out: W, label: impl Into<String>) -> Self {
        GgufWriter {
            out,
            label: label.into(),
            metadata: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
            alignment: DEFAULT_ALIGNMENT,
            data_size: 0,
            state: State::Declaring,
            pos: 0,
        }
    }

    fn err(&self, fault: Fault) -> GgufError {
        Ctx(&self.label).err(fault)
    }

    fn misuse(&self, msg: String) -> GgufError {
        self.err(Fault::Misuse(msg))
    }

    /// Adds a key–value pair (in the order given). `general.alignment` (u32, a power of two) sets the alignment.
    pub fn add_kv(&mut self, key: impl Into<String>, value: Value) -> Result<(), GgufError> {
        let key = key.into();
        if !matches!(self.state, State::Declaring) {
            return Err(self.misuse(format!("key {key:?} added after tensor data began")));
        }
        if key.is_empty() {
            return Err(self.misuse("an empty key (llama.cpp refuses such files)".into()));
        }
        let alignment = match (key == KEY_ALIGNMENT, &value) {
            (false, _) => None,
            (true, Value::U32(a)) if a.is_power_of_two() => {
                let a = u64::from(*a);
                // A larger alignment pads every tensor declared so far more; their offsets must still fit.
                let Some(data_size) = self.data_size_at(a) else {
                    return Err(self.misuse(format!("alignment {a} pushes the tensors' offsets beyond 2^64")));
                };
                Some((a, data_size))
            }
            (true, v) => return Err(self.err(Fault::BadAlignment(format!("{} {}", v.type_label(), v)))),
        };
        if !homogeneous(&value) {
            return Err(self.misuse(format!("key {key:?}: an array holds items of another type than it declares")));
        }
        if array_depth(&value) > MAX_ARRAY_DEPTH {
            return Err(self.misuse(format!("key {key:?}: arrays nested deeper than {MAX_ARRAY_DEPTH}")));
        }
        if !self.keys.insert(key.clone()) {
            return Err(self.err(Fault::DuplicateKey(key)));
        }
        // Only now, when the pair is accepted: a refused duplicate must not change the layout of the file.
        if let Some((a, data_size)) = alignment {
            self.alignment = a;
            self.data_size = data_size;
        }
        self.metadata.push((key, value));
        Ok(())
    }

    /// Declares a tensor; its data must later arrive in declaration order.
    pub fn add_tensor_info(&mut self, name: impl Into<String>, dims: &[u64], ty: GgmlType) -> Result<(), GgufError> {
        let name = name.into();
        if !matches!(self.state, State::Declaring) {
            return Err(self.misuse(format!("tensor {name:?} declared after tensor data began")));
        }
        if name.len() >= GGML_MAX_NAME {
            return Err(self.misuse(format!("tensor name {name:?} has {} bytes; llama.cpp takes fewer than {GGML_MAX_NAME}", name.len())));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(self.err(Fault::BadDimCount { name, n_dims: dims.len() as u32 }));
        }
        // The reader's limits: ggml holds shapes in int64, and the offsets of all tensors must fit in a u64.
        if !shape_fits_i64(dims) {
            return Err(self.err(Fault::ShapeOverflow { name, dims: dims.to_vec() }));
        }
        if !dims[0].is_multiple_of(ty.block_size() as u64) {
            return Err(self.err(Fault::PartialBlock { name, ne0: dims[0], ty, block: ty.block_size() }));
        }
        let sizes = ty.row_size(dims.iter().product()).and_then(|b| {
            let padded = b.checked_next_multiple_of(self.alignment)?;
            Some((b, self.data_size.checked_add(padded)?))
        });
        let Some((n_bytes, data_size)) = sizes else {
            return Err(self.err(Fault::ShapeOverflow { name, dims: dims.to_vec() }));
        };
        if !self.names.insert(name.clone()) {
            return Err(self.err(Fault::DuplicateTensor(name)));
        }
        self.data_size = data_size;
        self.tensors.push(Pending { name, dims: dims.to_vec(), ty, n_bytes });
        Ok(())
    }

    /// Bytes of the data section with every tensor padded to `alignment` (None if that overflows a u64).
    fn data_size_at(&self, alignment: u64) -> Option<u64> {
        self.tensors.iter().try_fold(0u64, |sum, t| sum.checked_add(t.n_bytes.checked_next_multiple_of(alignment)?))
    }

    /// Bytes the finished file will have: header, metadata, infos, padding and data. Known once all is declared.
    pub fn predicted_size(&self) -> u64 {
        // Saturated: only a data section within a few bytes of 2^64 could overflow here, and no such file can be
        // written anyway.
        self.header_bytes().next_multiple_of(self.alignment).saturating_add(self.data_size)
    }

    /// Bytes of the header as declared so far, before its padding (the same sum [`header_bytes`] makes).
    fn header_bytes(&self) -> u64 {
        header_bytes(
            self.metadata.iter().map(|(k, v)| (k.as_str(), v)),
            self.tensors.iter().map(|t| (t.name.as_str(), t.dims.len())),
        )
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        self.out.write_all(bytes).map_err(|e| Ctx(&self.label).err(Fault::Io(e)))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> Result<(), GgufError> {
        let n = (self.pos.next_multiple_of(self.alignment) - self.pos) as usize;
        self.put(&vec![0u8; n])
    }

    fn write_header(&mut self) -> Result<(), GgufError> {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&3u32.to_le_bytes());
        buf.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        buf.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut buf, k);
            buf.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            put_value(&mut buf, v);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut buf, &t.name);
            buf.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                buf.extend_from_slice(&d.to_le_bytes());
            }
            buf.extend_from_slice(&t.ty.id().to_le_bytes());
            buf.extend_from_slice(&offset.to_le_bytes());
            offset += t.n_bytes.next_multiple_of(self.alignment);
        }
        // The layout and the prediction share one sum; a disagreement is a bug here, never a file of another size
        // than the one promised.
        if buf.len() as u64 != self.header_bytes() {
            return Err(self.misuse(format!("header of {} bytes, {} predicted", buf.len(), self.header_bytes())));
        }
        self.put(&buf)?;
        // Padded even without tensors, as llama.cpp and gguf-py do (the reader accepts either).
        self.pad()?;
        self.state = State::Data { index: 0, written: 0 };
        Ok(())
    }

    /// Name, shape and type of the tensor whose data is expected next (None when all have been written).
    pub fn next_tensor(&self) -> Option<(&str, &[u64], GgmlType)> {
        let index = match self.state {
            State::Declaring => 0,
            State::Data { index, .. } => index,
        };
        self.tensors.get(index).map(|t| (t.name.as_str(), t.dims.as_slice(), t.ty))
    }

    /// Appends data of tensor `name`, which must be the next one in declaration order. A tensor may arrive in
    /// several pieces; it is complete (and padded) when its byte count is reached. The first call writes the header.
    pub fn write_tensor_data(&mut self, name: &str, bytes: &[u8]) -> Result<(), GgufError> {
        if matches!(self.state, State::Declaring) {
            self.write_header()?;
        }
        let State::Data { index, written } = self.state else { unreachable!("header written above") };
        let Some(t) = self.tensors.get(index) else {
            return Err(self.misuse(format!("data for {name:?} after every tensor was written")));
        };
        if t.name != name {
            return Err(self.misuse(format!("data for {name:?} while tensor {:?} is next", t.name)));
        }
        let total = t.n_bytes;
        let after = written + bytes.len() as u64;
        if after > total {
            return Err(self.misuse(format!("tensor {name:?} takes {total} bytes, got {after}")));
        }
        self.put(bytes)?;
        if after == total {
            self.pad()?;
            self.state = State::Data { index: index + 1, written: 0 };
        } else {
            self.state = State::Data { index, written: after };
        }
        Ok(())
    }

    /// Completes the file (writing the header if no tensor was declared) and returns the sink, flushed.
    pub fn finish(mut self) -> Result<W, GgufError> {
        if matches!(self.state, State::Declaring) {
            self.write_header()?;
        }
        if let State::Data { index, written } = self.state {
            if index < self.tensors.len() {
                let t = &self.tensors[index];
                return Err(self.misuse(format!(
                    "finished with tensor {:?} at {written} of {} bytes and {} more unwritten",
                    t.name,
                    t.n_bytes,
                    self.tensors.len() - index - 1
                )));
            }
        }
        self.out.flush().map_err(|e| Ctx(&self.label).err(Fault::Io(e)))?;
        Ok(self.out)
    }
}

/// Bytes of a GGUF header — magic, version, the two counts, every key–value pair and every tensor info — before
/// the zero padding that takes it to the alignment. Tensors are given as (name, number of dimensions). Pure: the
/// writer lays out its header by the same sum, so a prediction made from it cannot disagree with the file.
pub fn header_bytes<'a>(
    metadata: impl IntoIterator<Item = (&'a str, &'a Value)>,
    tensors: impl IntoIterator<Item = (&'a str, usize)>,
) -> u64 {
    let kvs: u64 = metadata.into_iter().map(|(k, v)| 8 + k.len() as u64 + 4 + encoded_len(v)).sum();
    let infos: u64 = tensors.into_iter().map(|(name, n_dims)| 8 + name.len() as u64 + 4 + 8 * n_dims as u64 + 4 + 8).sum();
    4 + 4 + 8 + 8 + kvs + infos
}

/// One tensor of a planned file: what its header entry and its data size depend on.
#[derive(Clone, Copy, Debug)]
pub struct TensorDecl<'a> {
    pub name: &'a str,
    /// ne order: `dims[0]` is the row length.
    pub dims: &'a [u64],
    pub ty: GgmlType,
}

/// Where everything of a GGUF file lies, as [`GgufWriter`] writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLayout {
    /// `general.alignment`, or [`DEFAULT_ALIGNMENT`].
    pub alignment: u64,
    /// Bytes of the header before its padding ([`header_bytes`]).
    pub header_bytes: u64,
    /// Where the data section starts: the header padded to the alignment.
    pub data_offset: u64,
    /// Bytes of the data section: every tensor padded to the alignment, the last one included.
    pub data_bytes: u64,
}

impl FileLayout {
    /// The size of the whole file.
    pub fn file_bytes(&self) -> u64 {
        self.data_offset + self.data_bytes
    }
}

/// The layout of the file [`GgufWriter`] makes from `metadata` (in order) and `tensors`, computed before anything
/// is written. None when the writer would refuse the input: a tensor with a partial block or a size beyond a u64, or
/// a `general.alignment` that is not a u32 power of two.
pub fn file_layout(metadata: &[(String, Value)], tensors: &[TensorDecl<'_>]) -> Option<FileLayout> {
    let alignment = match metadata.iter().find(|(k, _)| k == KEY_ALIGNMENT) {
        None => DEFAULT_ALIGNMENT,
        Some((_, Value::U32(a))) if a.is_power_of_two() => u64::from(*a),
        Some(_) => return None,
    };
    let header_bytes =
        header_bytes(metadata.iter().map(|(k, v)| (k.as_str(), v)), tensors.iter().map(|t| (t.name, t.dims.len())));
    let data_bytes = tensors.iter().try_fold(0u64, |sum, t| {
        let (&ne0, rest) = t.dims.split_first()?;
        if ne0 % t.ty.block_size() as u64 != 0 {
            return None;
        }
        let n = rest.iter().try_fold(ne0, |n, &d| n.checked_mul(d))?;
        sum.checked_add(t.ty.row_size(n)?.checked_next_multiple_of(alignment)?)
    })?;
    let data_offset = header_bytes.checked_next_multiple_of(alignment)?;
    data_offset.checked_add(data_bytes)?;
    Some(FileLayout { alignment, header_bytes, data_offset, data_bytes })
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => buf.push(*x),
        Value::I8(x) => buf.push(*x as u8),
        Value::U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => buf.push(*x as u8),
        Value::String(s) => put_str(buf, s),
        Value::U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::Array(elem, items) => {
            buf.extend_from_slice(&(*elem as u32).to_le_bytes());
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            // add_kv checked that every item has the declared type.
            for item in items {
                put_value(buf, item);
            }
        }
    }
}

fn encoded_len(v: &Value) -> u64 {
    match v {
        Value::String(s) => 8 + s.len() as u64,
        Value::Array(_, items) => 12 + items.iter().map(encoded_len).sum::<u64>(),
        v => v.value_type().min_encoded_size(),
    }
}

/// Whether every array in `v` holds only items of its declared element type (else the file would be unreadable).
fn homogeneous(v: &Value) -> bool {
    match v {
        Value::Array(elem, items) => items.iter().all(|i| i.value_type() == *elem && homogeneous(i)),
        _ => true,
    }
}

/// How many arrays deep `v` goes (0 for a scalar), counted as the reader counts it.
fn array_depth(v: &Value) -> usize {
    match v {
        Value::Array(_, items) => 1 + items.iter().map(array_depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl GgufWriter<super::AtomicFile> {
    /// A writer to a file on disk, through a temporary file that becomes `path` only on [`Self::commit`].
    pub fn create(path: impl AsRef<std::path::Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let file = super::AtomicFile::create(path).map_err(|e| GgufError::new(path, Fault::Io(e)))?;
        Ok(GgufWriter::new(file, path.display().to_string()))
    }

    /// Finishes the file and renames it into place. On any error the temporary file is removed.
    pub fn commit(self) -> Result<(), GgufError> {
        let label = self.label.clone();
        let file = self.finish()?;
        file.commit().map_err(|e| Ctx(&label).err(Fault::Io(e)))
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn refuses_what_llama_cpp_would_refuse_to_load() {
        let mut w = GgufWriter::new(Vec::new(), "t.gguf");
        assert!(matches!(w.add_kv("", Value::U32(1)).unwrap_err().fault, Fault::Misuse(_)));
        let long = "x".repeat(GGML_MAX_NAME);
        assert!(matches!(w.add_tensor_info(long, &[32], GgmlType::F32).unwrap_err().fault, Fault::Misuse(_)));
        w.add_tensor_info("x".repeat(GGML_MAX_NAME - 1), &[32], GgmlType::F32).unwrap();
    }
}
