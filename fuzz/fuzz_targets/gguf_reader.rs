//! Arbitrary bytes through the GGUF reader. Whatever it accepts must be safe to use in full: every value is
//! visited and formatted, every tensor's data borrowed, and the data of small tensors whose type has a codec
//! dequantized. A panic, an out-of-bounds access or an allocation beyond libFuzzer's limit is a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketlm::gguf::{GgufFile, Value};
use pocketlm::quant;

/// Tensors above this many elements are not dequantized, so that one input costs milliseconds, not seconds.
const MAX_DEQUANT_ELEMENTS: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else {
        return;
    };
    for (key, value) in file.metadata() {
        touch(value);
        assert!(std::ptr::eq(file.get(key).unwrap(), value), "keys are unique and indexed");
        let _ = (value.type_label(), value.summary(8), value.as_str_array());
    }
    for t in file.tensors() {
        let bytes = file.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.n_bytes);
        assert_eq!(file.tensor(&t.name), Some(t));
        let _ = t.n_rows();
        let n = t.n_elements();
        if t.ty.codec().is_some() && n <= MAX_DEQUANT_ELEMENTS {
            let mut out = vec![0f32; n as usize];
            quant::dequantize(t.ty, bytes, &mut out).expect("a tensor the reader accepted dequantizes");
            std::hint::black_box(&out);
        }
    }
});

/// Reads every scalar of a value, recursively, through the typed accessors.
fn touch(v: &Value) {
    let _ = (v.as_u64(), v.as_i64(), v.as_f32(), v.as_bool(), v.as_str(), v.to_string());
    if let Some((_, items)) = v.as_array() {
        items.iter().for_each(touch);
    }
}
