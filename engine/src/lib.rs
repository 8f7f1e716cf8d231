//! PocketLM's engine: GGUF files and ggml block types, bit-exact with llama.cpp.
//!
//! Layers, bottom up: [`quant`] (the ggml type table and a quantizer per block type) and [`gguf`] (reading by mmap
//! and streaming writes). Neither knows anything of models. [`quantize`] knows tensor names: it decides each
//! tensor's type the way llama.cpp's quantizer does.

pub mod atomic;
pub mod chat;
pub mod convert;
pub mod eval;
pub mod export;
pub mod gguf;
pub mod hf;
pub mod kernels;
pub mod library;
pub mod model;
pub mod quant;
pub mod page_cache;
pub mod pages;
pub mod quantize;
pub mod sample;
pub mod summary;
pub mod team;
pub mod tokenizer;
