//! `pocketlm inspect FILE [--json]`: the first thing to run on a GGUF file.

use std::path::PathBuf;

use anyhow::Result;
use pocketlm::gguf::{GgufFile, Value};
use pocketlm::summary::{human_bytes, human_count, Summary, TensorEntry};
use serde_json::{json, Map, Value as Json};

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Items shown of each long metadata array.
    #[arg(long, default_value_t = 8)]
    array_items: usize,
}

pub fn run(args: Args) -> Result<()> {
    let f = GgufFile::open(&args.file)?;
    let summary = Summary::new(&TensorEntry::all_of(&f));
    let out = if args.json { to_json(&f, &summary, args.array_items) } else { to_text(&f, &summary, args.array_items) };
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn shape(dims: &[u64]) -> String {
    let parts: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

fn to_text(f: &GgufFile, s: &Summary, items: usize) -> String {
    let mut o = String::new();
    let line = |o: &mut String, l: String| {
        o.push_str(&l);
        o.push('\n');
    };
    line(&mut o, format!("{}", f.path().display()));
    line(
        &mut o,
        format!(
            "  GGUF v{}, {} ({} bytes), alignment {}, tensor data from byte {}",
            f.version(),
            human_bytes(f.file_size()),
            f.file_size(),
            f.alignment(),
            f.data_offset()
        ),
    );
    let arch = f.architecture().unwrap_or("(none)");
    let name = f.get_str("general.name").unwrap_or("(unnamed)");
    line(&mut o, format!("  {name} — architecture {arch}"));
    line(
        &mut o,
        format!(
            "  {} tensors, {} parameters, {} of tensor data, {:.2} bits per weight",
            s.total.tensors,
            human_count(s.total.params),
            human_bytes(s.total.bytes),
            s.total.bits_per_weight()
        ),
    );

    line(&mut o, format!("\nMetadata ({} keys)", f.metadata().len()));
    let key_w = f.metadata().iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in f.metadata() {
        line(&mut o, format!("  {k:key_w$}  {:<18} {}", v.type_label(), v.summary(items)));
    }

    line(&mut o, format!("\nTensors ({})", f.tensors().len()));
    let name_w = f.tensors().iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    line(&mut o, format!("  {:>4}  {:name_w$}  {:<22} {:<6} {:>12} {:>12}", "#", "name", "shape", "type", "offset", "bytes"));
    for (i, t) in f.tensors().iter().enumerate() {
        line(
            &mut o,
            format!("  {i:>4}  {:name_w$}  {:<22} {:<6} {:>12} {:>12}", t.name, shape(&t.dims), t.ty.to_string(), t.offset, t.n_bytes),
        );
    }

    line(&mut o, "\nBy type".into());
    line(&mut o, format!("  {:<8} {:>8} {:>14} {:>12} {:>7} {:>6}", "type", "tensors", "parameters", "size", "share", "bpw"));
    for (ty, t) in &s.by_type {
        line(&mut o, tally_row(&ty.to_string(), t, s));
    }
    line(&mut o, tally_row("total", &s.total, s));

    line(&mut o, "\nBy tensor group".into());
    line(&mut o, format!("  {:<13} {:>8} {:>14} {:>12} {:>7} {:>6}", "group", "tensors", "parameters", "size", "share", "bpw"));
    for (g, t) in &s.by_group {
        line(&mut o, tally_row_w(g.label(), t, s, 13));
    }
    o
}

fn tally_row(label: &str, t: &pocketlm::summary::Tally, s: &Summary) -> String {
    tally_row_w(label, t, s, 8)
}

fn tally_row_w(label: &str, t: &pocketlm::summary::Tally, s: &Summary, w: usize) -> String {
    let share = if s.total.bytes == 0 { 0.0 } else { 100.0 * t.bytes as f64 / s.total.bytes as f64 };
    format!(
        "  {label:<w$} {:>8} {:>14} {:>12} {:>6.1}% {:>6.2}",
        t.tensors,
        t.params,
        human_bytes(t.bytes),
        share,
        t.bits_per_weight()
    )
}

/// Metadata as JSON; arrays longer than `items` become `{type, len, head}`.
fn value_json(v: &Value, items: usize) -> Json {
    match v {
        Value::Array(t, xs) if xs.len() > items => {
            json!({ "type": t.name(), "len": xs.len(), "head": xs.iter().take(items).map(|x| value_json(x, items)).collect::<Vec<_>>() })
        }
        Value::Array(_, xs) => Json::Array(xs.iter().map(|x| value_json(x, items)).collect()),
        Value::String(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        v => v.as_i64().map(|i| json!(i)).or_else(|| v.as_u64().map(|u| json!(u))).unwrap_or(Json::Null),
    }
}

fn tally_json(t: &pocketlm::summary::Tally) -> Json {
    json!({ "tensors": t.tensors, "params": t.params, "bytes": t.bytes, "bits_per_weight": t.bits_per_weight() })
}

fn to_json(f: &GgufFile, s: &Summary, items: usize) -> String {
    let mut meta = Map::new();
    for (k, v) in f.metadata() {
        meta.insert(k.clone(), json!({ "type": v.type_label(), "value": value_json(v, items) }));
    }
    let doc = json!({
        "file": f.path().display().to_string(),
        "version": f.version(),
        "file_size": f.file_size(),
        "alignment": f.alignment(),
        "data_offset": f.data_offset(),
        "metadata": meta,
        "tensors": f.tensors().iter().map(|t| json!({
            "name": t.name, "shape": t.dims, "type": t.ty.to_string(), "offset": t.offset, "bytes": t.n_bytes,
        })).collect::<Vec<_>>(),
        "total": tally_json(&s.total),
        "by_type": s.by_type.iter().map(|(ty, t)| json!({ "type": ty.to_string(), "tally": tally_json(t) })).collect::<Vec<_>>(),
        "by_group": s.by_group.iter().map(|(g, t)| json!({ "group": g.label(), "tally": tally_json(t) })).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON of plain values");
    text.push('\n');
    text
}
