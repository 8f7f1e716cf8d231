//! GGUF files: being written now.
