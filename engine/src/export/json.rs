//! A small JSON value whose objects keep the order they were built in, for the files we write.
//!
//! `serde_json::Map` is sorted or insertion-ordered depending on a cargo feature that any crate in the build can
//! turn on (the CLI does), so the same export would come out with its keys in a different order from the engine's
//! tests than from the command line. Writing through [`J`] makes the bytes independent of the build.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value with ordered objects.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum J {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    /// An object from `(key, value)` pairs, in the order given.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, J)>) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn str(s: impl Into<String>) -> J {
        J::Str(s.into())
    }

    /// `Some(v)` → `v`, `None` → `null`.
    pub fn opt(v: Option<J>) -> J {
        v.unwrap_or(J::Null)
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::U64(v) => s.serialize_u64(*v),
            J::I64(v) => s.serialize_i64(*v),
            J::F64(v) => s.serialize_f64(*v),
            J::Str(v) => s.serialize_str(v),
            J::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            J::Obj(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// An f32 from a GGUF file as the JSON number a Hugging Face config would hold: the shortest decimal that reads
/// back as the same f32 (`0.00001`, not `9.999999747378752e-6`), provided that Python's path — parse as a double,
/// then round to f32 — lands on the same bits; else the f32's exact value as a double.
pub(crate) fn f32_number(x: f32) -> J {
    let short: f64 = format!("{x}").parse().expect("Rust prints floats it can parse");
    if (short as f32).to_bits() == x.to_bits() {
        J::F64(short)
    } else {
        J::F64(f64::from(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_shortens_floats() {
        let v = J::obj([("b", J::U64(1)), ("a", f32_number(1e-5)), ("c", f32_number(100000.0))]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"b":1,"a":0.00001,"c":100000.0}"#);
        // Every f32 we write reads back as itself through f64.
        for bits in [0x3727c5acu32, 0x48f42400, 0x3f800001, 0x00000001, 0x7f7fffff] {
            let x = f32::from_bits(bits);
            let J::F64(d) = f32_number(x) else { unreachable!() };
            assert_eq!((d as f32).to_bits(), bits);
        }
    }
}
