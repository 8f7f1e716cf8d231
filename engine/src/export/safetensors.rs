//! Writing `model.safetensors`, one tensor at a time.
//!
//! Layout (huggingface/safetensors): u64 little-endian header length N, N bytes of JSON, then the data. The JSON maps
//! each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the data) after a
//! `__metadata__` object; the reference writer pads it with spaces so the data starts on an 8-byte boundary, lists
//! tensors in data order, and orders data by name when all dtypes are equal — as we do. Every size is known from the
//! GGUF shapes before a weight is read, so the header goes first and the data streams after it.
//!
//! Each tensor is dequantized a slice of rows at a time (q/k slices hold whole heads, so the permutation can be
//! undone inside one slice), checked finite, narrowed and written: memory stays at one slice whatever the model.

use std::io::Write;

use super::json::J;
use super::source::{unpermute_rows, ExportTensor};
use super::{CancelToken, ExportError};
use crate::gguf::GgufFile;
use crate::hf::Dtype;
use crate::quant::block::{fp32_to_bf16, fp32_to_fp16};

/// Weights per slice: 16 MiB of f32, few enough that a cancel or a progress update is never far away.
const SLICE_WEIGHTS: usize = 4 << 20;

/// The header bytes (length prefix included) for `tensors` stored as `dtype`, and the data size that follows.
pub fn header(tensors: &[ExportTensor], dtype: Dtype) -> (Vec<u8>, u64) {
    let mut entries = vec![("__metadata__".to_string(), J::obj([("format", J::str("pt"))]))];
    let mut offset = 0u64;
    for t in tensors {
        let end = offset + t.n_elements() * dtype.size() as u64;
        entries.push((
            t.hf_name.clone(),
            J::obj([
                ("dtype", J::str(dtype.name())),
                ("shape", J::Arr(t.shape.iter().map(|&d| J::U64(d)).collect())),
                ("data_offsets", J::Arr(vec![J::U64(offset), J::U64(end)])),
            ]),
        ));
        offset = end;
    }
    let mut json = serde_json::to_vec(&J::Obj(entries)).expect("serializing a JSON value cannot fail");
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    (bytes, offset)
}

/// Reusable buffers for [`write_tensor`].
#[derive(Default)]
pub struct Buffers {
    values: Vec<f32>,
    scratch: Vec<f32>,
    bytes: Vec<u8>,
}

/// Dequantizes `t` from `f`, undoes the q/k permutation, narrows to `dtype` and writes it to `out`.
pub fn write_tensor(
    out: &mut impl Write,
    f: &GgufFile,
    t: &ExportTensor,
    dtype: Dtype,
    bufs: &mut Buffers,
    cancel: &CancelToken,
    io_err: impl Fn(std::io::Error) -> ExportError,
) -> Result<(), ExportError> {
    let info = &t.gguf;
    let data = f.tensor_data(info);
    // PyTorch view: [rows, cols]; a 1-D tensor is one column.
    let (rows, cols) = match t.shape.as_slice() {
        [r, c] => (*r as usize, *c as usize),
        [r] => (*r as usize, 1),
        _ => unreachable!("shapes are checked to be 1-D or 2-D when the model is read"),
    };
    let head_dim = t.unpermute_heads.map(|h| rows / h as usize);
    // GGUF rows (ne[1]) are PyTorch rows for 2-D tensors; a 1-D tensor is a single GGUF row, read whole.
    let (gguf_rows, row_bytes) = if t.shape.len() == 2 {
        (rows, data.len() / rows)
    } else {
        (1, data.len())
    };
    let weights_per_gguf_row = rows * cols / gguf_rows;
    let mut per_slice = (SLICE_WEIGHTS / weights_per_gguf_row).max(1);
    if let (Some(hd), 2) = (head_dim, t.shape.len()) {
        per_slice = (per_slice / hd).max(1) * hd;
    }
    let mut index = 0u64;
    for first in (0..gguf_rows).step_by(per_slice) {
        if cancel.is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        let n = per_slice.min(gguf_rows - first);
        let src = &data[first * row_bytes..(first + n) * row_bytes];
        bufs.values.clear();
        bufs.values.resize(n * weights_per_gguf_row, 0.0);
        crate::quant::dequantize(info.ty, src, &mut bufs.values).map_err(|e| ExportError::Tensor {
            file: f.path().into(),
            tensor: info.name.clone(),
            reason: e.to_string(),
        })?;
        if let Some(hd) = head_dim {
            let slice_rows = bufs.values.len() / cols;
            unpermute_rows(&mut bufs.values, slice_rows, cols, hd, &mut bufs.scratch);
        }
        let non_finite = |at: usize, value: f32, why: &str| ExportError::NonFinite {
            file: f.path().into(),
            tensor: info.name.clone(),
            index: index + at as u64,
            value,
            reason: why.to_string(),
        };
        if let Some(i) = bufs.values.iter().position(|v| !v.is_finite()) {
            return Err(non_finite(i, bufs.values[i], "in the file"));
        }
        bufs.bytes.clear();
        match dtype {
            Dtype::F32 => bufs.bytes.extend(bufs.values.iter().flat_map(|v| v.to_le_bytes())),
            Dtype::BF16 => bufs.bytes.extend(bufs.values.iter().flat_map(|&v| fp32_to_bf16(v).to_le_bytes())),
            Dtype::F16 => {
                // Beyond ±65504 a weight becomes infinite in F16: refuse rather than write a broken model.
                if let Some(i) = bufs.values.iter().position(|v| v.abs() > 65504.0) {
                    return Err(non_finite(i, bufs.values[i], "overflows F16 (use --dtype bf16 or f32)"));
                }
                bufs.bytes.extend(bufs.values.iter().flat_map(|&v| fp32_to_fp16(v).to_le_bytes()));
            }
        }
        if dtype == Dtype::BF16 {
            // Rounding can carry the largest finite f32 values up to infinity.
            if let Some(i) = bufs.bytes.chunks_exact(2).position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7f80 == 0x7f80)
            {
                return Err(non_finite(i, bufs.values[i], "overflows BF16"));
            }
        }
        out.write_all(&bufs.bytes).map_err(&io_err)?;
        index += bufs.values.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::TensorInfo;
    use crate::quant::GgmlType;

    #[test]
    fn header_is_aligned_and_parses_back() {
        let t = |name: &str, shape: Vec<u64>| ExportTensor {
            hf_name: name.into(),
            gguf: TensorInfo { name: String::new(), dims: vec![], ty: GgmlType::F32, offset: 0, n_bytes: 0 },
            shape,
            unpermute_heads: None,
        };
        let tensors = [t("a.weight", vec![3, 5]), t("b", vec![7])];
        let (bytes, data) = header(&tensors, Dtype::BF16);
        assert_eq!(data, (15 + 7) * 2);
        assert_eq!(bytes.len() % 8, 0);
        let mut file = bytes.clone();
        file.resize(bytes.len() + data as usize, 0);
        let parsed = crate::hf::safetensors::parse_header(std::path::Path::new("x"), &file).unwrap();
        assert_eq!(parsed["a.weight"].shape, [3, 5]);
        assert_eq!(parsed["b"].start, bytes.len() + 30);
        let json = std::str::from_utf8(&bytes[8..]).unwrap();
        assert!(json.starts_with(r#"{"__metadata__":{"format":"pt"},"a.weight":{"dtype":"BF16","shape":[3,5],"#));
    }
}
