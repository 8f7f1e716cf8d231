//! Quantizing a model: presets, the per-tensor type policy, and (later) the streaming pipeline.
