//! Every GGUF file is hostile: a corpus of malformed variants of one small valid file, each refused with the
//! specific fault it deserves, without a panic and without an allocation the file's own size cannot pay for.
//!
//! The valid file is made by our writer: every value type, a nested array, a string array, and three tensors
//! (F32, Q8_0, Q4_K). Variants are either patches of its bytes (truncations, forged counts) or files assembled by
//! hand with [`Raw`], for what no writer would make (bad UTF-8, unknown types, overlapping tensors …).
//!
//! "Before allocating" is measured, not timed: a counting global allocator records the largest single request
//! made on the parsing thread, and every parse here must stay within a small multiple of the file's size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pocketlm::gguf::{Fault, GgufError, GgufFile, GgufWriter, Value, ValueType, MAX_ARRAY_DEPTH};
use pocketlm::quant::{self, GgmlType};

// ---------------------------------------------------------------------------------------------------------------
// Allocation meter

/// The system allocator, recording the largest single request made on the current thread since the last reset.
/// A thread-local reading keeps tests that run in parallel on other threads out of the measurement.
struct Meter;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // A const-initialised Cell needs no lazy setup and no destructor, so this never allocates or recurses;
    // try_with only fails during thread teardown, whose allocations are not ours to measure.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s guarantees are
// ours; the only extra work is `note`, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded; the caller upholds GlobalAlloc::alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded; the caller upholds GlobalAlloc::alloc_zeroed's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded; `ptr` came from this allocator, which is System underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from this allocator, which is System underneath.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// What a parse may allocate at once: the reader's per-item structures are at most 32 bytes for every byte of
/// the file (a one-byte array item becomes a 32-byte `Value`), plus small fixed costs such as error messages.
fn allocation_budget(file_len: usize) -> usize {
    64 * file_len + 4096
}

/// Parses `bytes`; returns the result and the largest single allocation made while parsing.
fn parse(bytes: Vec<u8>) -> (Result<GgufFile, GgufError>, usize) {
    LARGEST.with(|l| l.set(0));
    let result = GgufFile::from_bytes("hostile.gguf", bytes);
    (result, LARGEST.with(Cell::get))
}

/// The fault a malformed file is refused with. Panics if it is accepted or allocates beyond its budget.
fn fault(bytes: Vec<u8>) -> Fault {
    let len = bytes.len();
    let (result, largest) = parse(bytes);
    assert!(largest <= allocation_budget(len), "a {len}-byte file made a {largest}-byte allocation");
    match result {
        Ok(_) => panic!("a malformed {len}-byte file was accepted"),
        Err(e) => {
            assert_eq!(e.file, "hostile.gguf", "errors name the file");
            e.fault
        }
    }
}

/// Asserts that `bytes` is refused with a fault matching `pattern` (and, optionally, a guard).
macro_rules! assert_fault {
    ($bytes:expr, $pattern:pat $(if $guard:expr)?) => {{
        let f = fault($bytes);
        assert!(matches!(f, $pattern $(if $guard)?), "expected {}, got {f:?}", stringify!($pattern));
    }};
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding helpers and the hand assembler

fn le32(x: u32) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

fn le64(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

/// A GGUF string: u64 length, then the bytes (not necessarily UTF-8).
fn gstr(b: &[u8]) -> Vec<u8> {
    [le64(b.len() as u64), b.to_vec()].concat()
}

/// An array value (without the leading type id 9): element type, count, then the encoded items.
fn garr(elem: u32, items: &[Vec<u8>]) -> Vec<u8> {
    [le32(elem), le64(items.len() as u64), items.concat()].concat()
}

const T_U8: u32 = 0;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;

const F32: u32 = 0;
const Q8_0: u32 = 8;

/// A GGUF file assembled field by field with nothing checked, for files no writer would make. Counts in the
/// header are those of the pieces added, unless overridden.
#[derive(Clone)]
struct Raw {
    magic: [u8; 4],
    version: u32,
    kv: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    alignment: usize,
    data: Vec<u8>,
}

impl Raw {
    fn new() -> Raw {
        Raw {
            magic: *b"GGUF",
            version: 3,
            kv: vec![],
            n_kv: 0,
            infos: vec![],
            n_tensors: 0,
            alignment: 32,
            data: vec![],
        }
    }

    /// A key–value pair: `value` is the encoded value after the type id.
    fn kv(mut self, key: &[u8], ty: u32, value: &[u8]) -> Raw {
        self.kv.extend([gstr(key), le32(ty), value.to_vec()].concat());
        self.n_kv += 1;
        self
    }

    fn tensor(mut self, name: &[u8], dims: &[u64], ty: u32, offset: u64) -> Raw {
        self.infos.extend(gstr(name));
        self.infos.extend(le32(dims.len() as u32));
        for &d in dims {
            self.infos.extend(le64(d));
        }
        self.infos.extend([le32(ty), le64(offset)].concat());
        self.n_tensors += 1;
        self
    }

    /// Sets `general.alignment` (a u32) and pads the tensor data to it.
    fn aligned(mut self, alignment: u32) -> Raw {
        self = self.kv(b"general.alignment", T_U32, &le32(alignment));
        self.alignment = alignment as usize;
        self
    }

    fn data(mut self, bytes: &[u8]) -> Raw {
        self.data.extend_from_slice(bytes);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = [self.magic.to_vec(), le32(self.version), le64(self.n_tensors), le64(self.n_kv)].concat();
        out.extend(&self.kv);
        out.extend(&self.infos);
        // Padding only before tensor data, so that a file without tensors ends where its last value does.
        if self.n_tensors > 0 {
            out.resize(out.len().next_multiple_of(self.alignment), 0);
        }
        out.extend(&self.data);
        out
    }
}

/// Where the length prefix of GGUF string `s` first occurs in `bytes`.
fn find_str(bytes: &[u8], s: &str) -> usize {
    let needle = gstr(s.as_bytes());
    bytes.windows(needle.len()).position(|w| w == needle).unwrap_or_else(|| panic!("{s:?} not in the file"))
}

fn patch_u64(bytes: &[u8], at: usize, value: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + 8].copy_from_slice(&value.to_le_bytes());
    out
}

fn patch_u32(bytes: &[u8], at: usize, value: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + 4].copy_from_slice(&value.to_le_bytes());
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The valid file

/// The three tensors of the valid file: name, dims (ne[0] first), type.
const TENSORS: [(&str, &[u64], GgmlType); 3] =
    [("w.f32", &[4, 2], GgmlType::F32), ("w.q8_0", &[64, 2], GgmlType::Q8_0), ("w.q4_k", &[256], GgmlType::Q4_K)];

fn tensor_bytes(dims: &[u64], ty: GgmlType) -> Vec<u8> {
    let n: u64 = dims.iter().product();
    let src: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    let mut dst = vec![0u8; quant::bytes_for(ty, n as usize).unwrap()];
    quant::quantize(ty, &src, dims[0] as usize, &mut dst).unwrap();
    dst
}

/// Every value type once, a string array, a nested array (of two differently typed arrays) and three tensors.
fn valid() -> Vec<u8> {
    let mut w = GgufWriter::new(Vec::new(), "valid.gguf");
    let kvs: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-100)),
        ("t.u16", Value::U16(60000)),
        ("t.i16", Value::I16(-30000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.f32", Value::F32(0.25)),
        ("t.bool", Value::Bool(true)),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(-1.5e300)),
        ("tokenizer.ggml.tokens", Value::Array(ValueType::String, vec!["a".into(), "bc".into(), "ünï".into()])),
        (
            "t.nested",
            Value::Array(
                ValueType::Array,
                vec![
                    Value::Array(ValueType::I32, vec![Value::I32(1), Value::I32(-2)]),
                    Value::Array(ValueType::Bool, vec![Value::Bool(false)]),
                ],
            ),
        ),
    ];
    for (k, v) in kvs {
        w.add_kv(k, v).unwrap();
    }
    for (name, dims, ty) in TENSORS {
        w.add_tensor_info(name, dims, ty).unwrap();
    }
    for (name, dims, ty) in TENSORS {
        w.write_tensor_data(name, &tensor_bytes(dims, ty)).unwrap();
    }
    w.finish().unwrap()
}

/// Offset of the first byte after the last tensor info, i.e. where the padding before the data starts.
fn infos_end(bytes: &[u8]) -> usize {
    let (name, dims, _) = TENSORS[2];
    find_str(bytes, name) + 8 + name.len() + 4 + 8 * dims.len() + 4 + 8
}

#[test]
fn the_valid_file_is_read_back() {
    let bytes = valid();
    let (result, largest) = parse(bytes.clone());
    let file = result.unwrap();
    assert!(largest <= allocation_budget(bytes.len()));
    assert_eq!(file.metadata().len(), 14);
    assert_eq!(file.get("t.u64"), Some(&Value::U64(u64::MAX)));
    assert_eq!(file.get("tokenizer.ggml.tokens").unwrap().as_str_array().unwrap(), ["a", "bc", "ünï"]);
    assert_eq!(file.tensors().len(), 3);
    for (t, (name, dims, ty)) in file.tensors().iter().zip(TENSORS) {
        assert_eq!((t.name.as_str(), t.dims.as_slice(), t.ty), (name, dims, ty));
        assert_eq!(file.tensor_data(t), tensor_bytes(dims, ty));
    }
    // Version 2 has the same layout and is read too.
    GgufFile::from_bytes("v2", patch_u32(&bytes, 4, 2)).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Truncation

#[test]
fn truncated_at_every_byte_of_the_header_and_in_the_data() {
    let bytes = valid();
    let file = GgufFile::from_bytes("valid", bytes.clone()).unwrap();
    let data_offset = file.data_offset() as usize;
    let infos_end = infos_end(&bytes);
    assert!(infos_end < data_offset, "the test needs padding before the data");

    // Header, metadata, tensor infos: a fixed-size field cut short is Truncated; a string or array cut short has a
    // length that no longer fits (CountTooLarge), as has the tensor or key count once the infos no longer fit.
    for cut in 0..infos_end {
        assert_fault!(bytes[..cut].to_vec(), Fault::Truncated { .. } | Fault::CountTooLarge { .. });
    }
    // The padding before the data section.
    for cut in infos_end..data_offset {
        assert_fault!(bytes[..cut].to_vec(), Fault::Truncated { what: "padding before tensor data", .. });
    }
    // Inside each tensor's data.
    for t in file.tensors() {
        let start = data_offset + t.offset as usize;
        let end = start + t.n_bytes as usize;
        for cut in [start, start + 1, (start + end) / 2, end - 1] {
            let name = t.name.clone();
            assert_fault!(bytes[..cut].to_vec(), Fault::OutOfBounds { name: ref n, .. } if *n == name);
        }
    }
    // A file may end right after the last tensor's bytes: its trailing padding is not required (nor by llama.cpp).
    let last = file.tensors().last().unwrap();
    GgufFile::from_bytes("unpadded", bytes[..data_offset + (last.offset + last.n_bytes) as usize].to_vec()).unwrap();
}

#[test]
fn empty_and_tiny_files() {
    assert_fault!(vec![], Fault::Truncated { what: "magic", .. });
    assert_fault!(b"GGU".to_vec(), Fault::Truncated { what: "magic", .. });
    assert_fault!(b"GGUF\x03\x00".to_vec(), Fault::Truncated { what: "version", .. });
    // The smallest valid file: header only, no tensors, no metadata.
    GgufFile::from_bytes("min", Raw::new().bytes()[..24].to_vec()).unwrap();
}

#[test]
fn an_empty_file_on_disk_is_refused() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gguf_hostile_empty.gguf");
    std::fs::write(&path, b"").unwrap();
    let err = GgufFile::open(&path).err().expect("an empty file is refused");
    assert!(matches!(err.fault, Fault::Truncated { what: "magic", .. } | Fault::Io(_)), "{err}");
    std::fs::write(&path, &valid()[..100]).unwrap();
    let err = GgufFile::open(&path).err().expect("a truncated file is refused");
    assert!(matches!(err.fault, Fault::CountTooLarge { .. } | Fault::Truncated { .. }), "{err}");
    std::fs::remove_file(&path).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Absurd counts and lengths

const ABSURD: [u64; 4] = [u64::MAX, 1 << 40, 1 << 63, (1 << 63) - 1];

#[test]
fn absurd_counts_and_lengths_are_refused_without_allocating() {
    let bytes = valid();
    let tokens = find_str(&bytes, "tokenizer.ggml.tokens");
    let nested = find_str(&bytes, "t.nested");
    // (byte offset of a u64 count or length, the `what` the reader names it with)
    let fields: Vec<(usize, &str)> = vec![
        (8, "tensor"),
        (16, "key-value"),
        (24, "key"),
        (find_str(&bytes, "general.architecture") + 8 + 20 + 4, "string value"),
        (tokens + 8 + 21 + 4 + 4, "array element"),
        (tokens + 8 + 21 + 4 + 4 + 8, "string value"),
        (nested + 8 + 8 + 4 + 4, "array element"),
        (nested + 8 + 8 + 4 + 4 + 8 + 4, "array element"),
        (find_str(&bytes, "w.q8_0"), "tensor name"),
    ];
    for (at, what) in fields {
        for count in ABSURD {
            let (result, largest) = parse(patch_u64(&bytes, at, count));
            let f = result.err().unwrap_or_else(|| panic!("count {count} at {at} accepted")).fault;
            assert!(
                matches!(f, Fault::CountTooLarge { what: w, count: c, .. } if w == what && c == count),
                "count {count} at byte {at}: expected CountTooLarge for {what}, got {f:?}"
            );
            assert!(largest < 64 * 1024, "count {count} at byte {at}: {largest}-byte allocation");
        }
    }
}

#[test]
fn a_2_pow_40_element_array_is_refused_before_allocating() {
    for elem in 0..=12u32 {
        let bytes = Raw::new().kv(b"big", T_ARRAY, &[le32(elem), le64(1 << 40)].concat()).bytes();
        let (result, largest) = parse(bytes);
        let f = result.err().expect("refused").fault;
        assert!(matches!(f, Fault::CountTooLarge { what: "array element", count, .. } if count == 1 << 40), "{f:?}");
        // The refused array would have needed 2^40 × 32 bytes; nothing near a kilobyte was asked for.
        assert!(largest < 1024, "element type {elem}: a {largest}-byte allocation");
    }
}

#[test]
fn counts_just_beyond_what_fits_are_refused() {
    // Three u32 items declared, the bytes of two present.
    let bytes = Raw::new().kv(b"a", T_ARRAY, &[le32(T_U32), le64(3), le32(1), le32(2)].concat()).bytes();
    assert_fault!(bytes, Fault::CountTooLarge { what: "array element", count: 3, .. });
    // Three strings declared in room for two length prefixes.
    let bytes = Raw::new().kv(b"a", T_ARRAY, &[le32(T_STRING), le64(3), gstr(b""), gstr(b"")].concat()).bytes();
    assert_fault!(bytes, Fault::CountTooLarge { what: "array element", count: 3, .. });
}

// ---------------------------------------------------------------------------------------------------------------
// Header and values

#[test]
fn bad_magic_and_versions() {
    let bytes = valid();
    let mut bad = bytes.clone();
    bad[..4].copy_from_slice(b"GGML");
    assert_fault!(bad, Fault::BadMagic(m) if &m == b"GGML");
    // Big-endian GGUF: the magic reads the same, the version does not.
    for version in [0, 1, 4, 3 << 24, u32::MAX] {
        assert_fault!(patch_u32(&bytes, 4, version), Fault::UnsupportedVersion(v) if v == version);
    }
}

#[test]
fn unknown_value_types() {
    for id in [13, 255, u32::MAX] {
        assert_fault!(Raw::new().kv(b"k", id, &[0; 8]).bytes(), Fault::UnknownValueType { id: i, .. } if i == id);
        assert_fault!(
            Raw::new().kv(b"k", T_ARRAY, &garr(id, &[])).bytes(),
            Fault::UnknownValueType { id: i, .. } if i == id
        );
    }
}

#[test]
fn bool_bytes_other_than_0_and_1() {
    assert_fault!(Raw::new().kv(b"b", T_BOOL, &[2]).bytes(), Fault::BadBool { value: 2, .. });
    assert_fault!(Raw::new().kv(b"b", T_BOOL, &[0xff]).bytes(), Fault::BadBool { value: 0xff, .. });
    let arr = garr(T_BOOL, &[vec![1], vec![0], vec![2]]);
    assert_fault!(Raw::new().kv(b"b", T_ARRAY, &arr).bytes(), Fault::BadBool { value: 2, .. });
}

#[test]
fn bad_utf8_in_keys_values_and_names() {
    const BAD: &[u8] = b"ab\xff\xfe";
    const SURROGATE: &[u8] = b"\xed\xa0\x80";
    for bad in [BAD, SURROGATE] {
        assert_fault!(Raw::new().kv(bad, T_U8, &[0]).bytes(), Fault::BadUtf8 { what: "key", .. });
        assert_fault!(Raw::new().kv(b"k", T_STRING, &gstr(bad)).bytes(), Fault::BadUtf8 { what: "string value", .. });
        let arr = garr(T_STRING, &[gstr(b"ok"), gstr(bad)]);
        assert_fault!(Raw::new().kv(b"k", T_ARRAY, &arr).bytes(), Fault::BadUtf8 { what: "string value", .. });
        let raw = Raw::new().tensor(bad, &[32], F32, 0).data(&[0; 128]);
        assert_fault!(raw.bytes(), Fault::BadUtf8 { what: "tensor name", .. });
    }
}

/// An array nested `depth` deep whose innermost array holds one u8 (the value after the type id 9): `depth - 1`
/// headers "array of one array", then the innermost array.
fn nested(depth: usize) -> Vec<u8> {
    let one_array = [le32(T_ARRAY), le64(1)].concat();
    [one_array.repeat(depth - 1), garr(T_U8, &[vec![7]])].concat()
}

#[test]
fn arrays_nested_deeper_than_the_limit() {
    let ok = GgufFile::from_bytes("deep", Raw::new().kv(b"d", T_ARRAY, &nested(MAX_ARRAY_DEPTH)).bytes()).unwrap();
    let mut v = ok.get("d").unwrap();
    for _ in 1..MAX_ARRAY_DEPTH {
        v = &v.as_array().unwrap().1[0];
    }
    assert_eq!(v, &Value::Array(ValueType::U8, vec![Value::U8(7)]));

    assert_fault!(Raw::new().kv(b"d", T_ARRAY, &nested(MAX_ARRAY_DEPTH + 1)).bytes(), Fault::TooDeep { .. });
    // A stack-exhaustion attempt: a hundred thousand levels are refused at the ninth.
    assert_fault!(Raw::new().kv(b"d", T_ARRAY, &nested(100_000)).bytes(), Fault::TooDeep { .. });
    // Nesting declared by the element type only, with no items, is harmless at any depth of declaration.
    GgufFile::from_bytes("empty", Raw::new().kv(b"d", T_ARRAY, &garr(T_ARRAY, &[])).bytes()).unwrap();
}

#[test]
fn duplicate_keys_and_tensor_names() {
    let raw = Raw::new().kv(b"k", T_U8, &[1]).kv(b"j", T_U8, &[1]).kv(b"k", T_STRING, &gstr(b"x"));
    assert_fault!(raw.bytes(), Fault::DuplicateKey(ref k) if k == "k");
    let raw = Raw::new().aligned(32).aligned(64);
    assert_fault!(raw.bytes(), Fault::DuplicateKey(ref k) if k == "general.alignment");

    let raw = Raw::new().tensor(b"t", &[32], F32, 0).tensor(b"t", &[32], F32, 128).data(&[0; 256]);
    assert_fault!(raw.bytes(), Fault::DuplicateTensor(ref n) if n == "t");
}

#[test]
fn alignment_must_be_a_u32_power_of_two() {
    let with = |ty: u32, value: Vec<u8>| Raw::new().kv(b"general.alignment", ty, &value).bytes();
    for a in [0u32, 3, 48, 96, u32::MAX] {
        assert_fault!(with(T_U32, le32(a)), Fault::BadAlignment(_));
    }
    assert_fault!(with(T_U64, le64(32)), Fault::BadAlignment(_));
    assert_fault!(with(T_I32, le32(32)), Fault::BadAlignment(_));
    assert_fault!(with(T_STRING, gstr(b"32")), Fault::BadAlignment(_));
    assert_fault!(with(T_ARRAY, garr(T_U32, &[le32(32)])), Fault::BadAlignment(_));
    // Every u32 power of two is accepted, even one far beyond the file (if there are no tensors to place).
    for shift in 0..32 {
        GgufFile::from_bytes("a", with(T_U32, le32(1 << shift))).unwrap();
    }
    // With a tensor, a 2^31 alignment puts the data section beyond the end of the file.
    let raw = Raw::new().kv(b"general.alignment", T_U32, &le32(1 << 31)).tensor(b"t", &[32], F32, 0);
    assert_fault!(raw.bytes(), Fault::Truncated { what: "padding before tensor data", .. });
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor infos

/// A file with one tensor of the given shape and type id at offset 0, followed by 256 data bytes.
fn one_tensor(dims: &[u64], ty: u32) -> Vec<u8> {
    Raw::new().tensor(b"t", dims, ty, 0).data(&[0; 256]).bytes()
}

#[test]
fn dimension_counts_other_than_1_to_4() {
    assert_fault!(one_tensor(&[], F32), Fault::BadDimCount { n_dims: 0, .. });
    assert_fault!(one_tensor(&[1, 1, 1, 1, 1], F32), Fault::BadDimCount { n_dims: 5, .. });
    // A forged count is refused before the dimensions it claims are read.
    let mut bytes = one_tensor(&[1], F32);
    let at = find_str(&bytes, "t") + 8 + 1;
    bytes = patch_u32(&bytes, at, u32::MAX);
    assert_fault!(bytes, Fault::BadDimCount { n_dims: u32::MAX, .. });
    for dims in [&[8u64][..], &[8, 1], &[4, 1, 2], &[1, 1, 1, 8]] {
        GgufFile::from_bytes("ok", one_tensor(dims, F32)).unwrap();
    }
}

#[test]
fn unknown_ggml_type_ids() {
    // 4 and 5 are the retired Q4_2 and Q4_3; 31 a retired id in ggml's table; 1000 never existed.
    for id in [4, 5, 31, 1000, u32::MAX] {
        assert_fault!(one_tensor(&[32], id), Fault::UnknownTensorType { id: i, .. } if i == id);
    }
}

#[test]
fn shapes_that_overflow() {
    let huge = 1u64 << 63;
    for dims in [
        &[u64::MAX][..],
        &[huge],
        &[1 << 32, 1 << 32],
        &[1 << 62, 2],
        &[1 << 21, 1 << 21, 1 << 21],
        &[2, 2, 2, 1 << 61],
        &[u64::MAX, 0],
        // No elements, but 2^80 rows: found by fuzzing, when `TensorInfo::n_rows` overflowed on an accepted file.
        &[0, 1 << 40, 1 << 40],
        &[32, 0, 1 << 32, 1 << 32],
    ] {
        assert_fault!(one_tensor(dims, F32), Fault::ShapeOverflow { .. });
    }
    // Zero-element tensors with sane shapes are fine, and so are their row counts.
    let file = GgufFile::from_bytes("zero", one_tensor(&[0, 1 << 20, 1 << 20], F32)).unwrap();
    assert_eq!((file.tensors()[0].n_elements(), file.tensors()[0].n_rows()), (0, 1 << 40));
    // Fits in i64 as an element count, but not as bytes of f64 (2^62 × 8).
    assert_fault!(one_tensor(&[1 << 62], 28), Fault::ShapeOverflow { .. });
    // i64::MAX elements exactly pass the shape checks and then fail on the file's size.
    assert_fault!(one_tensor(&[i64::MAX as u64], 24), Fault::OutOfBounds { .. });
}

#[test]
fn rows_that_are_not_whole_blocks() {
    assert_fault!(one_tensor(&[48, 2], Q8_0), Fault::PartialBlock { ne0: 48, block: 32, .. });
    assert_fault!(one_tensor(&[1], Q8_0), Fault::PartialBlock { ne0: 1, .. });
    assert_fault!(one_tensor(&[128], GgmlType::Q4_K.id()), Fault::PartialBlock { ne0: 128, block: 256, .. });
    // The element count is a whole number of blocks (16 × 2 = 32), but a row is not.
    assert_fault!(one_tensor(&[16, 2], Q8_0), Fault::PartialBlock { ne0: 16, .. });
}

#[test]
fn offsets_misaligned_out_of_range_or_overlapping() {
    let one = |offset: u64| Raw::new().tensor(b"t", &[8], F32, offset).data(&[0; 64]).bytes();
    GgufFile::from_bytes("ok", one(32)).unwrap();
    for offset in [1, 8, 16, 33] {
        assert_fault!(one(offset), Fault::Misaligned { offset: o, alignment: 32, .. } if o == offset);
    }
    // 32 bytes of data at 64 in a 64-byte data section, or far beyond.
    for offset in [64, 1 << 40, 1 << 63] {
        assert_fault!(one(offset), Fault::OutOfBounds { start, .. } if start == offset);
    }
    // offset + size overflows a u64: aligned, but the end wraps around.
    let wrap = u64::MAX - 31;
    assert_fault!(one(wrap), Fault::OutOfBounds { start, end: u64::MAX, .. } if start == wrap);
    // A custom alignment is what offsets are held to.
    let raw = Raw::new().aligned(64).tensor(b"t", &[8], F32, 32).data(&[0; 128]);
    assert_fault!(raw.bytes(), Fault::Misaligned { offset: 32, alignment: 64, .. });

    // The same bytes twice, and a partial overlap (a 64-byte tensor at 0, another at 32).
    let raw = Raw::new().tensor(b"a", &[8], F32, 0).tensor(b"b", &[8], F32, 0).data(&[0; 64]);
    assert_fault!(raw.bytes(), Fault::Overlap { .. });
    let raw = Raw::new().tensor(b"a", &[16], F32, 0).tensor(b"b", &[8], F32, 32).data(&[0; 96]);
    assert_fault!(raw.bytes(), Fault::Overlap { ref first, ref second } if first == "a" && second == "b");
    // Declared in the other order: the overlap is found by position, not declaration order.
    let raw = Raw::new().tensor(b"b", &[8], F32, 32).tensor(b"a", &[16], F32, 0).data(&[0; 96]);
    assert_fault!(raw.bytes(), Fault::Overlap { ref first, ref second } if first == "a" && second == "b");
    // Adjacent is fine, and so are zero-element tensors sharing an offset.
    let raw = Raw::new().tensor(b"a", &[8], F32, 0).tensor(b"b", &[8], F32, 32).data(&[0; 64]);
    GgufFile::from_bytes("ok", raw.bytes()).unwrap();
    let raw = Raw::new().tensor(b"a", &[0], F32, 0).tensor(b"b", &[0, 4], F32, 0);
    GgufFile::from_bytes("ok", raw.bytes()).unwrap();
}

/// Every byte of the valid file's header flipped to each of a few values: whatever the reader makes of it, it
/// returns (no panic) within its allocation budget, and what it accepts has tensors that lie inside the file.
#[test]
fn single_byte_corruptions_of_the_header() {
    let bytes = valid();
    let end = GgufFile::from_bytes("valid", bytes.clone()).unwrap().data_offset() as usize;
    for at in 0..end {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[at] = value;
            let len = bad.len();
            let (result, largest) = parse(bad);
            assert!(largest <= allocation_budget(len), "byte {at} = {value:#x}: {largest}-byte allocation");
            if let Ok(file) = result {
                for t in file.tensors() {
                    assert_eq!(file.tensor_data(t).len() as u64, t.n_bytes);
                    assert!(t.n_elements() <= i64::MAX as u64 && t.n_rows() <= i64::MAX as u64);
                }
            }
        }
    }
}
