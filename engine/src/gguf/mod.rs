//! GGUF files (ggml `docs/gguf.md`): read by memory map with every field checked, written as a stream.
//!
//! Layout: magic `GGUF`, u32 version (3; 2 is read too), u64 tensor count, u64 key–value count, the key–value
//! pairs, the tensor infos (name, u32 n_dims ≤ 4, u64 dims with ne[0] innermost, u32 ggml type, u64 offset into the
//! data section), zero padding to `general.alignment` (default 32), then the tensor data, each tensor aligned.
//! Everything is little-endian.

mod error;
mod reader;
mod value;
mod writer;

pub use error::{Fault, GgufError};
pub use reader::{GgufFile, TensorInfo};
pub use value::{Value, ValueType};
pub use writer::{file_layout, header_bytes, FileLayout, GgufWriter, TensorDecl};

pub use crate::atomic::AtomicFile;

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of tensor data when a file does not set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;
/// Arrays of arrays are legal; deeper than this is only ever an attack on the reader's stack.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Whether a shape fits ggml's int64 arithmetic: the product of its dimensions, zeros counted as ones, is at most
/// `i64::MAX`. Then every dimension, the element count and every partial product (the row count ne[1]·ne[2]·ne[3],
/// the byte strides) fit too. Counting zeros as ones means a zero-element tensor such as [0, 2^40, 2^40] cannot
/// hide a row count that overflows (llama.cpp accepts that shape; nothing real has it).
pub(crate) fn shape_fits_i64(dims: &[u64]) -> bool {
    dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d.max(1))).is_some_and(|n| n <= i64::MAX as u64)
}

pub const KEY_ALIGNMENT: &str = "general.alignment";
pub const KEY_ARCHITECTURE: &str = "general.architecture";
pub const KEY_NAME: &str = "general.name";
pub const KEY_FILE_TYPE: &str = "general.file_type";
pub const KEY_QUANTIZATION_VERSION: &str = "general.quantization_version";
