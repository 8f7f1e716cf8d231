//! GGUF errors: every one names the file (or the label of in-memory data) and says what is wrong where.

use std::fmt;
use std::path::Path;

use crate::quant::GgmlType;

/// A GGUF read or write failure: which file, and the fault.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {fault}")]
pub struct GgufError {
    pub file: String,
    pub fault: Fault,
}

impl GgufError {
    pub fn new(file: impl AsRef<Path>, fault: Fault) -> GgufError {
        GgufError { file: file.as_ref().display().to_string(), fault }
    }
}

/// What went wrong. Offsets are byte positions in the file.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a GGUF file: it starts with {0:02x?}, not \"GGUF\"")]
    BadMagic([u8; 4]),
    #[error("GGUF version {0} is not supported (PocketLM reads versions 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("truncated at byte {offset}: {what} needs {need} bytes, only {left} left")]
    Truncated { offset: u64, what: &'static str, need: u64, left: u64 },
    #[error("at byte {offset}: {what} count {count} cannot fit in the {left} bytes left (truncated or corrupt)")]
    CountTooLarge { offset: u64, what: &'static str, count: u64, left: u64 },
    #[error("at byte {offset}: {count} more {what}s would pass PocketLM's limit of {limit} per file")]
    LimitExceeded { offset: u64, what: &'static str, count: u64, limit: u64 },
    #[error("at byte {offset}: unknown value type {id}")]
    UnknownValueType { offset: u64, id: u32 },
    #[error("at byte {offset}: {what} is not valid UTF-8")]
    BadUtf8 { offset: u64, what: &'static str },
    #[error("at byte {offset}: bool byte {value} is neither 0 nor 1")]
    BadBool { offset: u64, value: u8 },
    #[error("at byte {offset}: arrays nested deeper than {max}")]
    TooDeep { offset: u64, max: usize },
    #[error("duplicate metadata key {0:?}")]
    DuplicateKey(String),
    #[error("general.alignment must be a u32 power of two, found {0}")]
    BadAlignment(String),
    #[error("tensor {name:?}: {n_dims} dimensions (GGUF allows 1 to 4)")]
    BadDimCount { name: String, n_dims: u32 },
    #[error("tensor {name:?}: unknown ggml type id {id}")]
    UnknownTensorType { name: String, id: u32 },
    #[error("tensor {name:?}: shape {dims:?} is beyond ggml's int64 (its non-zero dimensions multiply past 2^63 - 1)")]
    ShapeOverflow { name: String, dims: Vec<u64> },
    #[error("tensor {name:?}: a row of {ne0} is not a whole number of {ty} blocks of {block}")]
    PartialBlock { name: String, ne0: u64, ty: GgmlType, block: usize },
    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),
    #[error("tensor {name:?}: data offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned { name: String, offset: u64, alignment: u64 },
    #[error("tensor {name:?}: data bytes {start}..{end} lie beyond the end of the file's {len} data bytes")]
    OutOfBounds { name: String, start: u64, end: u64, len: u64 },
    #[error("tensors {first:?} and {second:?} overlap")]
    Overlap { first: String, second: String },
    #[error("writer: {0}")]
    Misuse(String),
}

/// Shorthand for building errors inside the reader and writer.
pub(crate) struct Ctx<'a>(pub &'a str);

impl Ctx<'_> {
    pub fn err(&self, fault: Fault) -> GgufError {
        GgufError { file: self.0.to_string(), fault }
    }
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
