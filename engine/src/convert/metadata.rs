//! GGUF metadata as the converter builds it: an ordered key list where setting a key again keeps its place (as
//! gguf-py's writer does), and the `general.*` naming heuristics of gguf-py `metadata.py` / `utility.py`.

use std::sync::OnceLock;

use regex::Regex;

/// A metadata value, typed as gguf-py writes it for the keys the converter emits.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    StringArray(Vec<String>),
    I32Array(Vec<i32>),
    /// SentencePiece scores (`tokenizer.ggml.scores`).
    F32Array(Vec<f32>),
}

impl MetaValue {
    /// The GGUF value gguf-py writes for this (arrays keep their element type).
    pub fn to_gguf(&self) -> crate::gguf::Value {
        use crate::gguf::{Value, ValueType};
        match self {
            MetaValue::U32(x) => Value::U32(*x),
            MetaValue::I32(x) => Value::I32(*x),
            MetaValue::F32(x) => Value::F32(*x),
            MetaValue::Bool(x) => Value::Bool(*x),
            MetaValue::String(s) => Value::String(s.clone()),
            MetaValue::StringArray(xs) => {
                Value::Array(ValueType::String, xs.iter().cloned().map(Value::String).collect())
            }
            MetaValue::I32Array(xs) => Value::Array(ValueType::I32, xs.iter().map(|&x| Value::I32(x)).collect()),
            MetaValue::F32Array(xs) => Value::Array(ValueType::F32, xs.iter().map(|&x| Value::F32(x)).collect()),
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            MetaValue::U32(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Ordered metadata. Keys are unique; [`Metadata::set`] on an existing key replaces the value in place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
}

impl Metadata {
    pub fn set(&mut self, key: &str, value: MetaValue) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn remove(&mut self, key: &str) -> Option<MetaValue> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    pub fn entries(&self) -> &[(String, MetaValue)] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<(String, MetaValue)> {
        self.entries
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
}

/// Name parts gguf-py derives from a model id (`ORG/Name-Size-Finetune-Version`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelIdParts {
    pub full_name: Option<String>,
    pub org: Option<String>,
    pub basename: Option<String>,
    pub finetune: Option<String>,
    pub version: Option<String>,
    pub size_label: Option<String>,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid pattern"))
}

/// Port of `Metadata.get_model_id_components`.
pub fn model_id_components(model_id: &str, total_params: i64) -> ModelIdParts {
    static VERSION: OnceLock<Regex> = OnceLock::new();
    static QTYPE: OnceLock<Regex> = OnceLock::new();
    static SIZE: OnceLock<Regex> = OnceLock::new();
    static FINETUNE: OnceLock<Regex> = OnceLock::new();
    let version_re = re(&VERSION, r"(?i)^(?:v|iter)?\d+(?:[.]\d+)*$");
    let qtype_re = re(&QTYPE, r"(?i)^(?:i?q\d(?:_\w)*|b?fp?(?:16|32))$");
    let size_re = re(&SIZE, r"(?i)^(?:(?:(?:[A]|\d+[x])?\d+(?:[._]\d+)?[KMBT][\d]?)|small|mini|medium|large|x?xl)$");
    let finetune_re = re(&FINETUNE, r"(?i)^(?:chat|instruct|vision|lora)$");

    if model_id.contains(' ') {
        return ModelIdParts { full_name: Some(model_id.to_string()), ..Default::default() };
    }
    let (mut org, full) = match model_id.split_once('/') {
        Some((o, n)) => (Some(o.to_string()), n.to_string()),
        None => (None, model_id.to_string()),
    };
    if org.as_deref().is_some_and(|o| o.starts_with('.')) {
        org = None;
    }

    #[derive(Default, Clone, Copy)]
    struct T {
        basename: bool,
        size_label: bool,
        finetune: bool,
        version: bool,
        qtype: bool,
    }
    impl T {
        fn is_empty(&self) -> bool {
            !(self.basename || self.size_label || self.finetune || self.version || self.qtype)
        }
        fn len(&self) -> usize {
            [self.basename, self.size_label, self.finetune, self.version, self.qtype].iter().filter(|&&b| b).count()
        }
    }

    let mut parts: Vec<String> = full.split('-').filter(|p| !p.is_empty()).map(str::to_string).collect();
    let mut types = vec![T::default(); parts.len()];
    for i in 0..parts.len() {
        let part = parts[i].clone();
        if version_re.is_match(&part) {
            types[i].version = true;
        } else if qtype_re.is_match(&part) {
            types[i].qtype = true;
            parts[i] = part.to_uppercase();
        } else if i > 0 && size_re.is_match(&part) {
            let mut p: Vec<char> = part.replace('_', ".").chars().collect();
            // bloom-7b1 notation: 7b1 → 7.1b.
            if p.last().is_some_and(|c| c.is_ascii_digit()) && p.len() >= 2 {
                let n = p.len();
                let (a, b) = (p[n - 2], p[n - 1]);
                p.truncate(n - 2);
                p.push('.');
                p.push(b);
                p.push(a);
            }
            let n = p.len();
            if n > 1 && p[n - 2].is_ascii_digit() && "kmbt".contains(p[n - 1]) {
                p[n - 1] = p[n - 1].to_ascii_uppercase();
            }
            let mut s: String = p.iter().collect();
            if total_params != 0 {
                let n = p.len();
                let last = p[n - 1];
                if let Ok(num) = p[..n - 1].iter().collect::<String>().parse::<f64>() {
                    // " KMBT".find(last): -1 when absent, giving 1000^-1.
                    let exp = " KMBT".find(last).map(|i| i as i32).unwrap_or(-1);
                    let label_params = num * 1000f64.powi(exp);
                    let tp = total_params as f64;
                    let is_ctx = (total_params < 0 && label_params < (total_params.abs() / 8) as f64)
                        || (total_params > 0 && (label_params - tp).abs() > (7 * total_params / 8) as f64);
                    if is_ctx {
                        types[i].finetune = true;
                        s = format!("{}{}", p[..n - 1].iter().collect::<String>(), last.to_lowercase());
                    }
                }
            }
            if types[i].is_empty() {
                types[i].size_label = true;
            }
            parts[i] = s;
        } else if i > 0 && finetune_re.is_match(&part) {
            if total_params < 0 && part.eq_ignore_ascii_case("lora") {
                types[i].qtype = true;
            } else {
                types[i].finetune = true;
            }
        }
    }
    // Word-only size labels give way when a numeric one exists.
    if parts.iter().zip(&types).any(|(n, t)| t.size_label && n.chars().any(|c| c.is_numeric())) {
        for (n, t) in parts.iter().zip(types.iter_mut()) {
            if t.size_label && n.chars().all(char::is_alphabetic) {
                t.size_label = false;
            }
        }
    }
    let mut at_start = true;
    for (part, t) in parts.iter().zip(types.iter_mut()) {
        let alpha_start = part.chars().next().is_some_and(char::is_alphabetic);
        if at_start && ((t.is_empty() && alpha_start) || t.version) {
            t.basename = true;
        } else {
            at_start = false;
            if t.is_empty() {
                t.finetune = true;
            }
        }
    }
    for t in types.iter_mut().rev() {
        if t.basename && t.len() > 1 {
            t.basename = false;
        } else {
            break;
        }
    }
    let join = |f: &dyn Fn(&T) -> bool| -> Option<String> {
        let v: Vec<&str> = parts.iter().zip(&types).filter(|(_, t)| f(t)).map(|(p, _)| p.as_str()).collect();
        (!v.is_empty()).then(|| v.join("-"))
    };
    let mut basename = join(&|t| t.basename);
    let mut seen = Vec::new();
    for (p, t) in parts.iter().zip(&types) {
        if t.size_label && !seen.contains(&p.as_str()) {
            seen.push(p.as_str());
        }
    }
    let size_label = (!seen.is_empty()).then(|| seen.join("-"));
    let finetune = join(&|t| t.finetune);
    let version = join(&|t| t.version && !t.basename);
    if size_label.is_none() && finetune.is_none() && version.is_none() {
        basename = None;
    }
    ModelIdParts { full_name: Some(full), org, basename, finetune, version, size_label }
}

/// Python's `str.islower()`: some cased character, and no uppercase one.
fn py_islower(s: &str) -> bool {
    s.chars().any(char::is_lowercase) && !s.chars().any(char::is_uppercase)
}

/// Python's `str.title()`: a letter after a non-letter is uppercased, the others lowercased.
fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        if prev_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_cased = c.is_lowercase() || c.is_uppercase();
    }
    out
}

/// Port of `Metadata.id_to_title`: `smollm2-135m-instruct` → `Smollm2 135m Instruct`.
pub fn id_to_title(s: &str) -> String {
    static VER: OnceLock<Regex> = OnceLock::new();
    let ver = re(&VER, r"^(?:v\d+(?:\.\d+)*|\d.*)$");
    s.trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| if py_islower(w) && !ver.is_match(w) { py_title(w) } else { w.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Port of gguf-py `model_weight_count_rounded_notation` (and `size_label` for dense models): `8.3M`, `135M`, `1.2B`.
pub fn size_label(total_params: u64) -> String {
    let n = total_params as f64;
    let (scaled, suffix) = if n > 1e12 {
        (n * 1e-12, "T")
    } else if n > 1e9 {
        (n * 1e-9, "B")
    } else if n > 1e6 {
        (n * 1e-6, "M")
    } else {
        (n * 1e-3, "K")
    };
    // Python's round() is half-to-even; then the digits before the point, leading zeros stripped, are counted.
    let rounded = scaled.round_ties_even() as u64;
    let int_digits = if rounded == 0 { 0 } else { rounded.to_string().len() };
    let fix = 2usize.saturating_sub(int_digits);
    format!("{scaled:.fix$}{suffix}")
}

/// A base model or dataset entry (`general.base_model.N.*`, `general.dataset.N.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceEntry {
    pub name: Option<String>,
    pub organization: Option<String>,
    pub version: Option<String>,
    pub repo_url: Option<String>,
}

/// Port of the base-model/dataset loop of `Metadata.apply_metadata_heuristic`: a Hugging Face id or URL → entry.
fn source_entry(id: &str, total_params: i64) -> SourceEntry {
    let mut e = SourceEntry::default();
    let fill = |e: &mut SourceEntry, c: &ModelIdParts| {
        e.name = c.full_name.as_deref().map(id_to_title);
        e.organization = c.org.as_deref().map(id_to_title);
        e.version = c.version.clone();
    };
    if ["http://", "https://", "ssh://"].iter().any(|p| id.starts_with(p)) {
        e.repo_url = Some(id.to_string());
        if id.contains("huggingface.co") {
            static HF: OnceLock<Regex> = OnceLock::new();
            if let Some(m) = re(&HF, r"^https?://huggingface.co/([^/]+/[^/]+)$").captures(id) {
                fill(&mut e, &model_id_components(&m[1], total_params));
            }
        }
    } else {
        let c = model_id_components(id, total_params);
        fill(&mut e, &c);
        if let (Some(org), Some(full)) = (&c.org, &c.full_name) {
            e.repo_url = Some(format!("https://huggingface.co/{org}/{full}"));
        }
    }
    e
}

/// The `general.*` block in gguf-py's order (`Metadata.set_gguf_meta_model`), from the sources the converter
/// uses, first found wins: the model card (README.md front matter, see [`super::model_card`]), config.json's
/// `_name_or_path` (when it looks like an id), then the folder name. `folder_id` is the folder's name, or the
/// repository id for a Hugging Face cache snapshot, whose folder is only a commit hash.
pub fn general_naming(
    card: Option<&super::model_card::Card>,
    name_or_path: Option<&str>,
    folder_id: &str,
    total_params: u64,
    meta: &mut Metadata,
) {
    use super::model_card::CardValue;
    let tp = total_params as i64;
    let empty = super::model_card::Card::new();
    let card = card.unwrap_or(&empty);
    let card_str = |k: &str| match card.get(k) {
        Some(CardValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    // (field, card keys in the order gguf-py tries them)
    let field = |keys: &[&str]| keys.iter().find_map(|k| card_str(k));
    let mut name = field(&["name", "model_name"]);
    let author = field(&["author", "model_author", "model_creator"]);
    let mut version = field(&["version", "model_version"]);
    let mut organization = field(&["organization", "model_organization"]);
    let description = field(&["description", "model_description"]);
    let mut finetune = field(&["finetune", "model_finetune"]);
    let mut basename = field(&["basename", "model_basename", "model_type"]);
    let mut size = field(&["size_label", "model_size_label"]);
    let source_url = field(&["url", "model_url"]);
    let source_doi = field(&["doi", "model_doi"]);
    let source_uuid = field(&["uuid", "model_uuid"]);
    let source_repo_url = field(&["repo_url", "model_repo_url"]);

    let list = |k: &str| match card.get(k) {
        Some(CardValue::Str(s)) => Some(vec![s.clone()]),
        Some(CardValue::List(v)) => Some(v.clone()),
        _ => None,
    };
    let first_present =
        |keys: &[&str]| keys.iter().find(|k| card.contains_key(**k)).map(|k| list(k).unwrap_or_default());
    let base_models = first_present(&["base_model", "base_models", "base_model_sources"])
        .map(|ids| ids.iter().map(|id| source_entry(id, tp)).collect::<Vec<_>>());
    let datasets = first_present(&["datasets", "dataset", "dataset_sources"])
        .map(|ids| ids.iter().map(|id| source_entry(id, tp)).collect::<Vec<_>>());
    let license = card_str("license").or_else(|| match card.get("license") {
        Some(CardValue::List(v)) => Some(v.join(",")),
        _ => None,
    });
    let license_name = card_str("license_name");
    let license_link = card_str("license_link");
    let concat = |keys: &[&str]| {
        let mut out: Option<Vec<String>> = None;
        for k in keys {
            if let Some(v) = list(k) {
                out.get_or_insert_with(Vec::new).extend(v);
            }
        }
        out
    };
    let tags = concat(&["tags", "pipeline_tag"]);
    let languages = concat(&["languages", "language"]);

    let mut apply = |id: &str| {
        let c = model_id_components(id, tp);
        if name.is_none() {
            name = c.full_name.as_deref().map(id_to_title);
        }
        if organization.is_none() {
            organization = c.org.as_deref().map(id_to_title);
        }
        basename = basename.take().or(c.basename);
        finetune = finetune.take().or(c.finetune);
        version = version.take().or(c.version);
        size = size.take().or(c.size_label);
    };
    if let Some(id) = name_or_path.filter(|s| s.matches('/').count() <= 1) {
        apply(id);
    }
    apply(folder_id);
    if size.is_none() && total_params > 0 {
        size = Some(size_label(total_params));
    }

    let mut put = |key: &str, v: Option<String>| {
        if let Some(v) = v {
            meta.set(key, MetaValue::String(v));
        }
    };
    put("general.name", Some(name.unwrap_or_else(|| folder_id.to_string())));
    put("general.author", author);
    put("general.version", version);
    put("general.organization", organization);
    put("general.finetune", finetune);
    put("general.basename", basename);
    put("general.description", description);
    put("general.size_label", size);
    put("general.license", license);
    put("general.license.name", license_name);
    put("general.license.link", license_link);
    put("general.source.url", source_url);
    put("general.source.doi", source_doi);
    put("general.source.uuid", source_uuid);
    put("general.source.repo_url", source_repo_url);
    for (what, entries) in [("base_model", base_models), ("dataset", datasets)] {
        let Some(entries) = entries else { continue };
        meta.set(&format!("general.{what}.count"), MetaValue::U32(entries.len() as u32));
        for (i, e) in entries.into_iter().enumerate() {
            for (k, v) in
                [("name", e.name), ("version", e.version), ("organization", e.organization), ("repo_url", e.repo_url)]
            {
                if let Some(v) = v {
                    meta.set(&format!("general.{what}.{i}.{k}"), MetaValue::String(v));
                }
            }
        }
    }
    if let Some(t) = tags {
        meta.set("general.tags", MetaValue::StringArray(t));
    }
    if let Some(l) = languages {
        meta.set("general.languages", MetaValue::StringArray(l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_position() {
        let mut m = Metadata::default();
        m.set("a", MetaValue::U32(1));
        m.set("b", MetaValue::U32(2));
        m.set("a", MetaValue::U32(3));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.get("a"), Some(&MetaValue::U32(3)));
    }

    #[test]
    fn size_labels_match_gguf_py() {
        // Values checked with gguf-py 0.19 `size_label(n, n, 0, 0)`.
        assert_eq!(size_label(8_343_616), "8.3M");
        assert_eq!(size_label(12_349_520), "12M");
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(1_235_814_400), "1.2B");
        assert_eq!(size_label(999), "1.0K");
        assert_eq!(size_label(0), "0.00K");
    }

    #[test]
    fn model_ids_split_like_gguf_py() {
        let c = model_id_components("HuggingFaceTB/SmolLM2-135M-Instruct", 134_515_008);
        assert_eq!(c.org.as_deref(), Some("HuggingFaceTB"));
        assert_eq!(c.basename.as_deref(), Some("SmolLM2"));
        assert_eq!(c.size_label.as_deref(), Some("135M"));
        assert_eq!(c.finetune.as_deref(), Some("Instruct"));
        assert_eq!(c.version, None);
        let c = model_id_components("tiny-llama3", 8_343_616);
        // No size, finetune or version: too ambiguous, so no basename either (only general.name is written).
        assert_eq!((c.basename, c.finetune, c.size_label), (None, None, None));
        assert_eq!(id_to_title("tiny-llama3"), "Tiny Llama3");
        assert_eq!(id_to_title("Meta-Llama-3.1-8B-Instruct"), "Meta Llama 3.1 8B Instruct");
        assert_eq!(id_to_title("qwen2.5-0.5b-instruct"), "Qwen2.5 0.5b Instruct");
    }
}
