//! What a model's bytes are made of: totals by ggml type and by tensor group (embeddings, attention, feed-forward,
//! output, norms), parameter count and bits per weight. `pocketlm inspect` prints it; the app draws it.

use crate::gguf::GgufFile;
use crate::quant::GgmlType;

/// The part of a transformer a tensor belongs to, by its GGUF name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TensorGroup {
    Embeddings,
    Attention,
    FeedForward,
    Output,
    Norms,
    Other,
}

impl TensorGroup {
    pub const ALL: [TensorGroup; 6] = [
        TensorGroup::Embeddings,
        TensorGroup::Attention,
        TensorGroup::FeedForward,
        TensorGroup::Output,
        TensorGroup::Norms,
        TensorGroup::Other,
    ];

    /// Classifies a llama.cpp tensor name (`token_embd.weight`, `blk.3.attn_q.weight`, `output_norm.weight`, …).
    pub fn of(name: &str) -> TensorGroup {
        // The last dotted part before `.weight`/`.bias` names the role; `blk.N.` prefixes don't matter.
        let stem = name.strip_suffix(".weight").or_else(|| name.strip_suffix(".bias")).unwrap_or(name);
        let role = stem.rsplit('.').next().unwrap_or(stem);
        if role.ends_with("_norm") || role == "norm" {
            TensorGroup::Norms
        } else if role.starts_with("token_embd") || role.starts_with("position_embd") {
            TensorGroup::Embeddings
        } else if role.starts_with("attn_") {
            TensorGroup::Attention
        } else if role.starts_with("ffn_") {
            TensorGroup::FeedForward
        } else if role == "output" {
            TensorGroup::Output
        } else {
            TensorGroup::Other
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TensorGroup::Embeddings => "embeddings",
            TensorGroup::Attention => "attention",
            TensorGroup::FeedForward => "feed-forward",
            TensorGroup::Output => "output",
            TensorGroup::Norms => "norms",
            TensorGroup::Other => "other",
        }
    }
}

/// One tensor as the summary needs it.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub bytes: u64,
}

impl TensorEntry {
    /// Every tensor of a GGUF file, in file order.
    pub fn all_of(f: &GgufFile) -> Vec<TensorEntry> {
        f.tensors()
            .iter()
            .map(|t| TensorEntry { name: t.name.clone(), dims: t.dims.clone(), ty: t.ty, bytes: t.n_bytes })
            .collect()
    }

    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Tensors, parameters and bytes of one type or group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub tensors: u64,
    pub params: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, t: &TensorEntry) {
        self.tensors += 1;
        self.params += t.n_elements();
        self.bytes += t.bytes;
    }

    /// Bits per weight of this part (0 when empty).
    pub fn bits_per_weight(&self) -> f64 {
        if self.params == 0 {
            0.0
        } else {
            self.bytes as f64 * 8.0 / self.params as f64
        }
    }
}

/// Totals of a model's tensors.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub total: Tally,
    /// By type, in ggml id order; only types present.
    pub by_type: Vec<(GgmlType, Tally)>,
    /// By group, in [`TensorGroup::ALL`] order; only groups present.
    pub by_group: Vec<(TensorGroup, Tally)>,
}

impl Summary {
    pub fn new<'a>(tensors: impl IntoIterator<Item = &'a TensorEntry>) -> Summary {
        let mut s = Summary::default();
        for t in tensors {
            s.total.add(t);
            match s.by_type.iter_mut().find(|(ty, _)| *ty == t.ty) {
                Some((_, tally)) => tally.add(t),
                None => {
                    let mut tally = Tally::default();
                    tally.add(t);
                    s.by_type.push((t.ty, tally));
                }
            }
            let g = TensorGroup::of(&t.name);
            match s.by_group.iter_mut().find(|(grp, _)| *grp == g) {
                Some((_, tally)) => tally.add(t),
                None => {
                    let mut tally = Tally::default();
                    tally.add(t);
                    s.by_group.push((g, tally));
                }
            }
        }
        s.by_type.sort_by_key(|(ty, _)| ty.id());
        s.by_group.sort_by_key(|(g, _)| *g);
        s
    }
}

/// `1.87 GiB`, `512 B`: binary units, as llama.cpp and file managers print model sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{:.2} {}", v, UNITS[unit])
}

/// `134.52 M`, `3.21 B`: parameter counts as model cards print them.
pub fn human_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.2} K", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} M", n as f64 / 1e6),
        _ => format!("{:.2} B", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, dims: &[u64], ty: GgmlType) -> TensorEntry {
        let n: u64 = dims.iter().product();
        TensorEntry { name: name.into(), dims: dims.to_vec(), ty, bytes: ty.row_size(n).unwrap() }
    }

    #[test]
    fn groups_follow_llama_cpp_names() {
        assert_eq!(TensorGroup::of("token_embd.weight"), TensorGroup::Embeddings);
        assert_eq!(TensorGroup::of("blk.0.attn_q.weight"), TensorGroup::Attention);
        assert_eq!(TensorGroup::of("blk.11.attn_v.bias"), TensorGroup::Attention);
        assert_eq!(TensorGroup::of("blk.0.attn_norm.weight"), TensorGroup::Norms);
        assert_eq!(TensorGroup::of("blk.0.ffn_norm.weight"), TensorGroup::Norms);
        assert_eq!(TensorGroup::of("blk.29.ffn_down.weight"), TensorGroup::FeedForward);
        assert_eq!(TensorGroup::of("output.weight"), TensorGroup::Output);
        assert_eq!(TensorGroup::of("output_norm.weight"), TensorGroup::Norms);
        assert_eq!(TensorGroup::of("rope_freqs.weight"), TensorGroup::Other);
    }

    #[test]
    fn totals_add_up_by_type_and_group() {
        let ts = [
            entry("token_embd.weight", &[256, 10], GgmlType::Q6_K),
            entry("blk.0.attn_q.weight", &[256, 4], GgmlType::Q4_K),
            entry("blk.0.ffn_up.weight", &[256, 8], GgmlType::Q4_K),
            entry("blk.0.attn_norm.weight", &[256], GgmlType::F32),
        ];
        let s = Summary::new(&ts);
        assert_eq!(s.total.tensors, 4);
        assert_eq!(s.total.params, 256 * 23);
        assert_eq!(s.total.bytes, 210 * 10 + 144 * 12 + 1024);
        assert_eq!(s.by_type.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [GgmlType::F32, GgmlType::Q4_K, GgmlType::Q6_K]);
        assert_eq!(s.by_type[1].1, Tally { tensors: 2, params: 256 * 12, bytes: 144 * 12 });
        assert_eq!(s.by_group.len(), 4);
        assert_eq!(s.by_type[1].1.bits_per_weight(), 4.5);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2_011_539_712), "1.87 GiB");
        assert_eq!(human_bytes(799_862_912), "762.81 MiB");
        assert_eq!(human_count(134_515_008), "134.52 M");
    }
}
