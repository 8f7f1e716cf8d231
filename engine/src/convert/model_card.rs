//! The model card: README.md's YAML front matter, which llama.cpp's converter mines for `general.*` keys (license,
//! tags, languages, base models, datasets, authorship; gguf-py `Metadata.load_model_card`).
//!
//! We read the subset of YAML those keys use — top-level `key: scalar`, flow lists `[a, b]` and block lists of
//! scalars — and skip every other top-level key whole, so nested blocks such as `model-index` never need parsing.
//! A key whose value is something else (a nested map, a list of maps, a multi-line scalar) is left out, where
//! gguf-py would have used it; plain scalars that YAML 1.1 reads as booleans, numbers or null are not strings,
//! and are left out as gguf-py's string checks leave them out.

use std::collections::BTreeMap;
use std::path::Path;

/// Largest README.md we read.
const MAX_CARD_BYTES: u64 = 16 << 20;

/// A front-matter value, as far as the converter uses it.
#[derive(Clone, Debug, PartialEq)]
pub enum CardValue {
    Str(String),
    List(Vec<String>),
    /// Anything else: a boolean, number, null, map, list of maps or block scalar.
    Other,
}

/// Top-level keys of the front matter.
pub type Card = BTreeMap<String, CardValue>;

/// Reads `dir/README.md`'s front matter; `None` when there is no README or no front matter.
pub fn load(dir: &Path) -> Option<Card> {
    let path = dir.join("README.md");
    let len = std::fs::metadata(&path).ok()?.len();
    if len > MAX_CARD_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    parse_front_matter(&text)
}

/// Parses the front matter of a model card's text (`---` on the first line, up to the next `---` line).
pub fn parse_front_matter(text: &str) -> Option<Card> {
    let mut lines = text.lines();
    if lines.next()? != "---" {
        return None;
    }
    let mut body: Vec<String> = Vec::new();
    for line in lines {
        if line == "---" {
            break;
        }
        body.push(line.to_string());
    }
    // gguf-py's fixes before parsing: the "Norway problem" (`- no` read as false) and tabs.
    let mut yaml = body.join("\n") + "\n";
    yaml = yaml.replace("- no\n", "- \"no\"\n").replace('\t', "  ");
    Some(parse_yaml_subset(&yaml))
}

fn parse_yaml_subset(yaml: &str) -> Card {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut card = Card::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let starts_top = line.chars().next().is_some_and(|c| !c.is_whitespace() && c != '#' && c != '-');
        if !starts_top {
            continue;
        }
        // The key's block: following lines that are indented, list items, blank or comments.
        let start = i;
        while i < lines.len() {
            let l = lines[i];
            let first = l.chars().next();
            if first.is_none() || first.is_some_and(|c| c.is_whitespace() || c == '#' || c == '-') {
                i += 1;
            } else {
                break;
            }
        }
        let Some((key, rest)) = split_key(line) else { continue };
        let rest = strip_comment(rest.trim());
        let value = if rest.is_empty() { block_value(&lines[start..i]) } else { inline_value(rest) };
        card.insert(key.to_string(), value);
    }
    card
}

/// `key: rest` (or `key:` at the end of the line).
fn split_key(line: &str) -> Option<(&str, &str)> {
    if let Some(k) = line.strip_suffix(':') {
        return Some((unquote_key(k), ""));
    }
    let i = line.find(": ")?;
    Some((unquote_key(&line[..i]), &line[i + 2..]))
}

fn unquote_key(k: &str) -> &str {
    let k = k.trim();
    k.strip_prefix('"').and_then(|k| k.strip_suffix('"')).unwrap_or(k)
}

/// Drops a ` #` comment outside quotes.
fn strip_comment(s: &str) -> &str {
    let mut quote = None;
    let mut prev_space = true;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && prev_space => return s[..i].trim_end(),
            None => {}
        }
        prev_space = c.is_whitespace();
    }
    s
}

/// A block under `key:` — only a list of scalars is understood.
fn block_value(block: &[&str]) -> CardValue {
    let mut items = Vec::new();
    for l in block {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some(item) = t.strip_prefix("- ").or_else(|| (t == "-").then_some("")) else { return CardValue::Other };
        match scalar(strip_comment(item.trim())) {
            Some(s) => items.push(s),
            None => return CardValue::Other,
        }
    }
    if items.is_empty() {
        CardValue::Other // `key:` with nothing under it is null
    } else {
        CardValue::List(items)
    }
}

fn inline_value(rest: &str) -> CardValue {
    if let Some(inner) = rest.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else { return CardValue::Other };
        let mut items = Vec::new();
        for part in split_flow(inner) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match scalar(part) {
                Some(s) => items.push(s),
                None => return CardValue::Other,
            }
        }
        return CardValue::List(items);
    }
    match scalar(rest) {
        Some(s) => CardValue::Str(s),
        None => CardValue::Other,
    }
}

/// Splits a flow sequence's inside on commas outside quotes.
fn split_flow(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ',' => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A string scalar, or `None` for what YAML 1.1 (PyYAML) reads as another type, and for structures.
fn scalar(s: &str) -> Option<String> {
    if let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return Some(inner.replace("''", "'"));
    }
    if let Some(inner) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                _ => return None,
            }
        }
        return Some(out);
    }
    if s.is_empty() || s.starts_with(['[', '{', '|', '>', '&', '*', '!', '%', '@', '`']) {
        return None;
    }
    const NON_STRINGS: &[&str] = &[
        "~", "null", "Null", "NULL", "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
        "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if NON_STRINGS.contains(&s) || s.replace('_', "").parse::<f64>().is_ok() || is_date(s) {
        return None;
    }
    Some(s.to_string())
}

/// YAML 1.1 timestamps of the date form (`2024-05-01`), which PyYAML reads as dates.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_the_converter_uses() {
        let card = parse_front_matter(
            "---\nlibrary_name: transformers\nlicense: apache-2.0   # comment\nlanguage:\n- en\n- no\ntags: [safetensors, \"onnx\", 'a, b']\n\
             base_model:\n  - HuggingFaceTB/SmolLM2-135M\nmodel-index:\n- name: x\n  results:\n  - task: {type: t}\n\
             pipeline_tag: text-generation\nversion: 1.0\ndatasets: null\ndescription: >\n  folded\n---\n# Title\n",
        )
        .unwrap();
        assert_eq!(card["license"], CardValue::Str("apache-2.0".into()));
        assert_eq!(card["language"], CardValue::List(vec!["en".into(), "no".into()]));
        assert_eq!(card["tags"], CardValue::List(vec!["safetensors".into(), "onnx".into(), "a, b".into()]));
        assert_eq!(card["base_model"], CardValue::List(vec!["HuggingFaceTB/SmolLM2-135M".into()]));
        assert_eq!(card["model-index"], CardValue::Other);
        assert_eq!(card["pipeline_tag"], CardValue::Str("text-generation".into()));
        assert_eq!(card["version"], CardValue::Other);
        assert_eq!(card["datasets"], CardValue::Other);
        assert_eq!(card["description"], CardValue::Other);
        assert!(parse_front_matter("# no front matter\n").is_none());
    }
}
