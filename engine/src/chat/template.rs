//! Chat templates: the Jinja template a model ships (`tokenizer.chat_template`) turned into the prompt text,
//! rendered the way Hugging Face transformers' `apply_chat_template` renders it.
//!
//! transformers (`utils/chat_template_utils.py`, 4.57) renders in a sandboxed Jinja2 environment with
//! `trim_blocks` and `lstrip_blocks`, the `loopcontrols` extension, a `tojson` filter that is Python's
//! `json.dumps` (no HTML escaping, `ensure_ascii=False`, `", "`/`": "` separators), and two globals:
//! `raise_exception(msg)` and `strftime_now(fmt)`. The variables are `messages`, `tools` and `documents` (none
//! here), `add_generation_prompt`, and the tokenizer's special tokens (`bos_token`, `eos_token`, …). We do the
//! same with minijinja, plus minijinja-contrib's `pycompat` for the Python string and dict methods templates call
//! (`.strip()`, `.split()`, `.startswith()`, `.items()`…). `tests/chat_template.rs` holds the output to
//! transformers' on the SmolLM2, Llama 3 / 3.1 / 3.2 and Qwen 2.5 / 3 templates.
//!
//! A file without a template gets ChatML (`<|im_start|>role\ncontent<|im_end|>\n`), llama.cpp's fallback too.

use std::fmt::Write as _;
use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
/// Template values (for [`RenderOptions::extra`]): minijinja's, re-exported so callers need no dependency on it.
pub use minijinja::Value;

use crate::gguf::GgufFile;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message { role: role.into(), content: content.into() }
    }
}

/// A template that could not be compiled or rendered: which file (or label), and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: chat template: {fault}")]
pub struct TemplateError {
    pub file: String,
    pub fault: String,
}

/// ChatML, used when a file carries no template.
pub const CHATML: &str = "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";

/// Longest template source we compile (the largest real ones are ~20 KB); bounds what a hostile file costs.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// Options beyond the messages.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    pub add_generation_prompt: bool,
    /// The time `strftime_now` reports, in seconds since the Unix epoch (UTC); `None`: now. Tests and goldens fix it.
    pub now: Option<i64>,
    /// Extra variables some templates read (Qwen 3's `enable_thinking`, Llama's `date_string`…).
    pub extra: Vec<(String, Value)>,
}

/// A compiled chat template with the special-token texts it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    source_label: String,
    is_fallback: bool,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// The template of `file` (`tokenizer.chat_template`), or ChatML when it has none. `bos_token` and
    /// `eos_token` are the texts of the file's BOS and EOS tokens, as transformers passes them.
    pub fn from_gguf(file: &GgufFile) -> Result<ChatTemplate, TemplateError> {
        let label = file.path().display().to_string();
        let token_text = |key: &str| -> String {
            let id = file.get_u64(key);
            let tokens = file.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map(|(_, items)| items);
            match (id, tokens) {
                (Some(id), Some(items)) => {
                    items.get(id as usize).and_then(|v| v.as_str()).unwrap_or_default().to_string()
                }
                _ => String::new(),
            }
        };
        let bos = token_text("tokenizer.ggml.bos_token_id");
        let eos = token_text("tokenizer.ggml.eos_token_id");
        match file.get("tokenizer.chat_template") {
            None => {
                let mut t = ChatTemplate::new(&label, CHATML, &bos, &eos)?;
                t.is_fallback = true;
                Ok(t)
            }
            Some(v) => {
                let src = v.as_str().ok_or_else(|| TemplateError {
                    file: label.clone(),
                    fault: format!("tokenizer.chat_template is {}, not a string", v.type_label()),
                })?;
                ChatTemplate::new(&label, src, &bos, &eos)
            }
        }
    }

    /// Compiles `source`. `label` names it in errors (a file path, or the template's origin).
    pub fn new(label: &str, source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, TemplateError> {
        let fail = |fault: String| TemplateError { file: label.to_string(), fault };
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(fail(format!("{} bytes, more than the {MAX_TEMPLATE_BYTES} we accept", source.len())));
        }
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.to_string()).map_err(|e| fail(describe(&e)))?;
        Ok(ChatTemplate {
            env,
            source_label: label.to_string(),
            is_fallback: false,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// Whether this is the ChatML fallback (the file had no template).
    pub fn is_fallback(&self) -> bool {
        self.is_fallback
    }

    /// The prompt for `messages`; with `add_generation_prompt` it ends with the opening of the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, TemplateError> {
        self.render_with(messages, &RenderOptions { add_generation_prompt, ..Default::default() })
    }

    /// [`ChatTemplate::render`] with every option.
    pub fn render_with(&self, messages: &[Message], opts: &RenderOptions) -> Result<String, TemplateError> {
        let msgs: Vec<Value> = messages.iter().map(|m| Value::from_object(MessageObj(m.clone()))).collect();
        let now = opts.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
        });
        let mut ctx: Vec<(String, Value)> = vec![
            ("messages".into(), Value::from(msgs)),
            ("tools".into(), Value::from(())),
            ("documents".into(), Value::from(())),
            ("add_generation_prompt".into(), Value::from(opts.add_generation_prompt)),
            ("bos_token".into(), Value::from(self.bos_token.clone())),
            ("eos_token".into(), Value::from(self.eos_token.clone())),
            (
                "strftime_now".into(),
                Value::from_function(move |fmt: String| -> Result<String, Error> { strftime(&fmt, now) }),
            ),
        ];
        ctx.extend(opts.extra.iter().cloned());
        let ctx: std::collections::BTreeMap<String, Value> = ctx.into_iter().collect();
        let tmpl = self.env.get_template("chat").map_err(|e| self.fail(&e))?;
        tmpl.render(Value::from(ctx)).map_err(|e| self.fail(&e))
    }

    fn fail(&self, e: &Error) -> TemplateError {
        TemplateError { file: self.source_label.clone(), fault: describe(e) }
    }
}

/// An error with its line and cause chain.
fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let _ = write!(s, ": {c}");
        src = c.source();
    }
    s
}

/// A message as a template sees it: a map with `role` then `content` (that order, as Python's dict keeps it).
#[derive(Debug)]
struct MessageObj(Message);

impl Object for MessageObj {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "role" => Some(Value::from(self.0.role.clone())),
            "content" => Some(Value::from(self.0.content.clone())),
            _ => None,
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["role", "content"])
    }
}

/// transformers' `tojson`: Python's `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, with those keyword arguments honoured.
fn tojson(value: Value, indent: Option<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")?.or(indent) {
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(usize::try_from(v.clone()).map_err(|_| Error::new(ErrorKind::InvalidOperation, "tojson: indent must be a number"))?),
        None => None,
    };
    let ensure_ascii: bool = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let sort_keys: bool = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let (item_sep, key_sep) = match kwargs.get::<Option<Vec<String>>>("separators")? {
        Some(s) if s.len() == 2 => (s[0].clone(), s[1].clone()),
        Some(_) => return Err(Error::new(ErrorKind::InvalidOperation, "tojson: separators must be two strings")),
        None if indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    kwargs.assert_all_used()?;
    let j = PyJson { indent, ensure_ascii, sort_keys, item_sep, key_sep };
    let mut out = String::new();
    j.write(&value, 0, &mut out)?;
    Ok(out)
}

struct PyJson {
    indent: Option<usize>,
    ensure_ascii: bool,
    sort_keys: bool,
    item_sep: String,
    key_sep: String,
}

impl PyJson {
    fn newline(&self, level: usize, out: &mut String) {
        if let Some(n) = self.indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * level));
        }
    }

    fn write(&self, v: &Value, level: usize, out: &mut String) -> Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    // Integers beyond i64 (u64, i128) print through their own Display.
                    let _ = write!(out, "{v}");
                } else {
                    let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                    out.push_str(&py_float(f));
                }
            }
            ValueKind::String => self.string(v.as_str().unwrap_or_default(), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                self.container('[', ']', items.len(), level, out, |i, out| self.write(&items[i], level + 1, out))?;
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort();
                }
                self.container('{', '}', keys.len(), level, out, |i, out| {
                    let k = &keys[i];
                    match k.as_str() {
                        Some(s) => self.string(s, out),
                        None => self.string(&k.to_string(), out),
                    }
                    out.push_str(&self.key_sep);
                    self.write(&v.get_item(k)?, level + 1, out)
                })?;
            }
            _ => self.string(&v.to_string(), out),
        }
        Ok(())
    }

    fn container(
        &self,
        open: char,
        close: char,
        n: usize,
        level: usize,
        out: &mut String,
        mut item: impl FnMut(usize, &mut String) -> Result<(), Error>,
    ) -> Result<(), Error> {
        out.push(open);
        if n > 0 {
            for i in 0..n {
                if i > 0 {
                    out.push_str(&self.item_sep);
                }
                self.newline(level + 1, out);
                item(i, out)?;
            }
            self.newline(level, out);
        }
        out.push(close);
        Ok(())
    }

    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && (c as u32) > 0x7e) => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// Python's `repr(float)` for the common cases: shortest round-trip digits, `.0` on integral values,
/// exponent form from 1e16, `NaN`/`Infinity` as `json.dumps` writes them.
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust: 1e16 / 1e-5; Python: 1e+16 / 1e-05.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent");
        return format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`): (year, month 1–12, day 1–31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a civil date (Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Python's `datetime.strftime` for the directives chat templates use (`%d %b %Y`, `%B`, `%m`, `%y`, `%H:%M:%S`,
/// `%A`/`%a`, `%j`, `%p`, `%I`, `%%`), at `now` seconds since the epoch, UTC.
fn strftime(fmt: &str, now: i64) -> Result<String, Error> {
    let days = now.div_euclid(86_400);
    let secs = now.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - days_from_civil(y, 1, 1);
    let month = MONTHS[(m - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => write!(out, "{d:02}"),
            Some('m') => write!(out, "{m:02}"),
            Some('Y') => write!(out, "{y}"),
            Some('y') => write!(out, "{:02}", y.rem_euclid(100)),
            Some('b') => write!(out, "{}", &month[..3]),
            Some('B') => write!(out, "{month}"),
            Some('a') => write!(out, "{}", &DAYS[weekday][..3]),
            Some('A') => write!(out, "{}", DAYS[weekday]),
            Some('H') => write!(out, "{hh:02}"),
            Some('I') => write!(out, "{:02}", if hh % 12 == 0 { 12 } else { hh % 12 }),
            Some('p') => write!(out, "{}", if hh < 12 { "AM" } else { "PM" }),
            Some('M') => write!(out, "{mm:02}"),
            Some('S') => write!(out, "{ss:02}"),
            Some('j') => write!(out, "{:03}", yday + 1),
            Some('%') => write!(out, "%"),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: unsupported directive %{}", other.map(String::from).unwrap_or_default()),
                ))
            }
        }
        .expect("writing to a String");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_matches_known_dates() {
        // 2024-07-26 00:00:00 UTC = 1721952000 (Llama 3.1's default date string "26 Jul 2024").
        assert_eq!(strftime("%d %b %Y", 1_721_952_000).unwrap(), "26 Jul 2024");
        assert_eq!(strftime("%A %B %j %H:%M:%S %y %%", 1_721_952_000 + 13 * 3600 + 5 * 60 + 9).unwrap(), "Friday July 208 13:05:09 24 %");
        assert_eq!(strftime("%Y-%m-%d %a", 0).unwrap(), "1970-01-01 Thu");
        assert_eq!(strftime("%Y-%m-%d %j", 951_782_400).unwrap(), "2000-02-29 060");
        assert!(strftime("%Q", 0).is_err());
    }

    #[test]
    fn python_floats() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(-2.25), "-2.25");
    }

    #[test]
    fn tojson_is_pythons_json_dumps() {
        let t = ChatTemplate::new("t", "{{ {'a': 2.0, 'b': [1, 'x<y>'], 'c': none} | tojson }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ [] | tojson(indent=2) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true, separators=[',', ':']) }}", "", "").unwrap();
        assert_eq!(t.render(&[], false).unwrap(), r#"{"a": 2.0, "b": [1, "x<y>"], "c": null}|"\u00e9"|[]|{"a":2,"b":1}"#);
    }
}
