//! Byte-level tokens and streaming detokenisation.
//!
//! Byte-level BPE (GPT-2's `bytes_to_unicode`) spells every byte as one printable character, so that a vocabulary
//! of strings can hold arbitrary bytes: the 188 printable bytes `!`..`~`, `¡`..`¬`, `®`..`ÿ` stand for themselves,
//! the other 68 (controls, space, DEL, NBSP, soft hyphen) become U+0100 upwards in byte order. A normal token's text
//! is decoded back to bytes through that table; a token may hold part of a UTF-8 character, which is why the
//! streaming [`Detokenizer`] holds back an incomplete tail until the rest arrives.

/// Whether byte `b` stands for itself in GPT-2's byte-level alphabet.
fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The character byte `b` is spelled as.
pub fn byte_to_char(b: u8) -> char {
    if is_printable(b) {
        return char::from(b);
    }
    // The non-printable bytes, counted in byte order, follow U+00FF.
    let n = (0..b).filter(|&x| !is_printable(x)).count() as u32;
    char::from_u32(256 + n).expect("below U+0144")
}

/// The inverse table: character (below U+0144) → byte. Built once per tokenizer, it is 324 entries.
pub(crate) struct ByteDecoder {
    table: Vec<Option<u8>>,
}

impl ByteDecoder {
    pub(crate) fn new() -> ByteDecoder {
        let mut table = vec![None; 256 + 68];
        for b in 0..=255u8 {
            table[byte_to_char(b) as usize] = Some(b);
        }
        ByteDecoder { table }
    }

    /// The bytes a byte-level token text stands for. A character outside the alphabet (which no byte-level
    /// tokenizer produces, but a file may hold) is kept as its own UTF-8.
    pub(crate) fn decode(&self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match self.table.get(c as usize).copied().flatten() {
                Some(b) => out.push(b),
                None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        out
    }
}

/// Bytes in, whole UTF-8 characters out: the part of streaming detokenisation that owns no tokenizer, for callers
/// that keep the tokenizer elsewhere (feed it `tokenizer.token_bytes(id)`). Bytes that can never form a character
/// become U+FFFD at once; an incomplete character at the end waits for more bytes (or [`Utf8Stream::flush`]).
#[derive(Clone, Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn new() -> Utf8Stream {
        Utf8Stream::default()
    }

    /// Adds bytes; returns the characters they complete (possibly none).
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = start + e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[start..valid]).expect("checked valid"));
                    match e.error_len() {
                        // Invalid whatever follows: replace it now and go on.
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start = valid + n;
                        }
                        // An incomplete character at the end: keep it for the next bytes.
                        None => {
                            start = valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }

    /// The end of the stream: whatever incomplete bytes are left, as U+FFFD.
    pub fn flush(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Streaming detokeniser: feed token ids as they are generated, get back the text each one completes, made only
/// of whole UTF-8 characters (a token may end in the middle of one; those bytes wait for the next token).
pub struct Detokenizer<'t> {
    tok: &'t super::Tokenizer,
    stream: Utf8Stream,
    render_special: bool,
}

impl<'t> Detokenizer<'t> {
    /// A detokeniser that leaves control tokens (`<|im_end|>`, BOS, …) out, as a chat shows text.
    pub fn new(tok: &'t super::Tokenizer) -> Detokenizer<'t> {
        Detokenizer { tok, stream: Utf8Stream::new(), render_special: false }
    }

    /// Whether control tokens are written as their text (llama.cpp's `special = true`).
    pub fn render_special(mut self, yes: bool) -> Self {
        self.render_special = yes;
        self
    }

    /// Adds one token; returns the complete characters it finishes (possibly none).
    pub fn push(&mut self, id: u32) -> String {
        if !self.render_special && self.tok.is_control(id) {
            return String::new();
        }
        self.stream.push_bytes(self.tok.token_bytes(id))
    }

    /// The end of the stream: whatever incomplete bytes are left, as U+FFFD.
    pub fn flush(&mut self) -> String {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_matches_gpt2() {
        // Facts of GPT-2's table: space is Ġ (U+0120), newline Ċ (U+010A), byte 0 is Ā (U+0100), 0xAD is Ń (U+0143).
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(0), 'Ā');
        assert_eq!(byte_to_char(0xAD), 'Ń');
        assert_eq!(byte_to_char(b'a'), 'a');
        let d = ByteDecoder::new();
        for b in 0..=255u8 {
            assert_eq!(d.decode(&byte_to_char(b).to_string()), vec![b]);
        }
        assert_eq!(d.decode("ĠhÃ©"), " hé".as_bytes());
    }

    #[test]
    fn utf8_stream_holds_back_partial_characters() {
        let mut s = Utf8Stream::new();
        let smile = "🙂".as_bytes();
        assert_eq!(s.push_bytes(&smile[..1]), "");
        assert_eq!(s.push_bytes(&smile[1..3]), "");
        assert_eq!(s.push_bytes(&[smile[3], b'a']), "🙂a");
        assert_eq!(s.push_bytes(&[0xFF, b'b', 0xE2]), "\u{FFFD}b");
        assert_eq!(s.flush(), "\u{FFFD}");
        assert_eq!(s.flush(), "");
    }
}
