//! `config.json`: the fields llama.cpp's converter reads for Llama-family and Qwen2 models, and the defaults it sees.
//!
//! The converter loads the config through transformers' `AutoConfig(...).to_dict()`, so a field missing from the
//! file still has the value of the config class's default (chosen by `model_type`): `LlamaConfig` always has a
//! `head_dim`, `MistralConfig` has `head_dim: None`, `Qwen2Config` none at all, and so on. [`HfConfig::hparams`]
//! resolves those defaults (transformers 4.57) into the numbers the converter uses.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::HfError;

/// The subset of `config.json` we read, plus the whole object for rarely used keys.
#[derive(Clone, Debug, Deserialize)]
pub struct HfConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    pub vocab_size: Option<u64>,
    pub hidden_size: Option<u64>,
    pub intermediate_size: Option<u64>,
    pub num_hidden_layers: Option<u64>,
    pub num_attention_heads: Option<u64>,
    pub num_key_value_heads: Option<u64>,
    pub head_dim: Option<u64>,
    pub rms_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    /// transformers ≤ 4.x spelling of the RoPE scaling block.
    pub rope_scaling: Option<Map<String, Json>>,
    /// transformers 5 spelling: the same block, with `rope_theta` inside.
    pub rope_parameters: Option<Map<String, Json>>,
    pub max_position_embeddings: Option<u64>,
    pub tie_word_embeddings: Option<bool>,
    /// Integers, or lists of them (Llama 3.1 lists three EOS ids); kept as JSON.
    pub bos_token_id: Option<Json>,
    pub eos_token_id: Option<Json>,
    pub pad_token_id: Option<Json>,
    /// Storage type the checkpoint claims (`torch_dtype` before transformers 4.56, `dtype` since). Informational:
    /// llama.cpp ignores it because "some finetunes lie"; the tensors' own dtypes decide.
    pub torch_dtype: Option<String>,
    pub dtype: Option<String>,
    /// `_name_or_path`, which older transformers saved; the converter takes the model's name from it.
    #[serde(rename = "_name_or_path")]
    pub name_or_path: Option<String>,
    #[serde(skip)]
    pub raw: Map<String, Json>,
}

/// Hyperparameters after the config class's defaults, as the converter sees them.
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    pub vocab_size: u64,
    pub hidden_size: u64,
    pub intermediate_size: u64,
    pub n_layers: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    /// `head_dim` as present in the config dict (None when the class has none or it is null).
    pub head_dim_field: Option<u64>,
    /// Per-head dimension used for shapes and RoPE: `head_dim_field`, else hidden / heads.
    pub head_dim: u64,
    pub max_position_embeddings: u64,
    pub rms_norm_eps: f64,
    pub rope: RopeParams,
    pub tie_word_embeddings: bool,
}

/// The RoPE block (`rope_parameters`, else `rope_scaling`) with `rope_theta` and `type` mirrored in, as the
/// converter's `TextModel.__init__` does.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RopeParams {
    pub rope_type: Option<String>,
    pub rope_theta: Option<f64>,
    pub factor: Option<f64>,
    pub low_freq_factor: Option<f64>,
    pub high_freq_factor: Option<f64>,
    pub original_max_position_embeddings: Option<u64>,
    pub extrapolation_factor: Option<f64>,
    pub attention_factor: Option<f64>,
    pub beta_fast: Option<f64>,
    pub beta_slow: Option<f64>,
}

/// Defaults of a transformers config class (4.57), for the fields we read.
struct ClassDefaults {
    vocab_size: u64,
    hidden_size: u64,
    intermediate_size: u64,
    n_layers: u64,
    n_head: u64,
    /// None: defaults to the head count.
    n_head_kv: Option<u64>,
    max_position_embeddings: u64,
    /// `LlamaConfig` computes `head_dim = hidden / heads` when absent; the others leave it absent or null.
    computes_head_dim: bool,
}

const LLAMA_DEFAULTS: ClassDefaults = ClassDefaults {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    n_layers: 32,
    n_head: 32,
    n_head_kv: None,
    max_position_embeddings: 2048,
    computes_head_dim: true,
};
const MISTRAL_DEFAULTS: ClassDefaults = ClassDefaults {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    n_layers: 32,
    n_head: 32,
    n_head_kv: Some(8),
    max_position_embeddings: 4096 * 32,
    computes_head_dim: false,
};
const QWEN2_DEFAULTS: ClassDefaults = ClassDefaults {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    n_layers: 32,
    n_head: 32,
    n_head_kv: Some(32),
    max_position_embeddings: 32768,
    computes_head_dim: false,
};

/// Most layers we accept; the largest public dense models have ~130. Bounds loops sized by the config.
pub const MAX_LAYERS: u64 = 4096;

/// Largest width, head count or head size we accept (16M; the widest public models are ~30k wide). Keeps every
/// product of two of them, which sizes tensors, far from overflow.
pub const MAX_DIM: u64 = 1 << 24;

/// Largest vocabulary we accept (16M rows; the largest public vocabularies have ~262k). The token list is
/// allocated from it.
pub const MAX_VOCAB: u64 = 1 << 24;

impl HfConfig {
    pub fn load(path: &Path) -> Result<HfConfig, HfError> {
        let text = super::read_json_text(path)?;
        HfConfig::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<HfConfig, HfError> {
        let json_err = |e: serde_json::Error| HfError::Json { file: path.to_path_buf(), source: e };
        let raw: Map<String, Json> = serde_json::from_str(text).map_err(json_err)?;
        let mut cfg: HfConfig = serde_json::from_value(Json::Object(raw.clone())).map_err(json_err)?;
        cfg.raw = raw;
        Ok(cfg)
    }

    /// First entry of `architectures`, as the converter picks it.
    pub fn architecture(&self) -> Option<&str> {
        self.architectures.first().map(String::as_str)
    }

    /// A float field read from the raw object (for keys we do not model).
    pub fn raw_f64(&self, key: &str) -> Option<f64> {
        self.raw.get(key).and_then(Json::as_f64)
    }

    /// Resolves the hyperparameters with the defaults of the config class `model_type` names.
    pub fn hparams(&self, file: &Path) -> Result<HParams, HfError> {
        let bad = |reason: String| HfError::Config { file: file.to_path_buf(), reason };
        let d = match self.model_type.as_deref() {
            Some("mistral") => &MISTRAL_DEFAULTS,
            Some("qwen2") => &QWEN2_DEFAULTS,
            _ => &LLAMA_DEFAULTS,
        };
        let hidden_size = self.hidden_size.unwrap_or(d.hidden_size);
        let n_head = self.num_attention_heads.unwrap_or(d.n_head);
        let n_head_kv = self.num_key_value_heads.or(d.n_head_kv).unwrap_or(n_head);
        let n_layers = self.num_hidden_layers.unwrap_or(d.n_layers);
        if n_head == 0 || n_head_kv == 0 || hidden_size == 0 {
            return Err(bad(format!(
                "hidden_size {hidden_size}, num_attention_heads {n_head}, num_key_value_heads {n_head_kv}: none may be 0"
            )));
        }
        if !n_head.is_multiple_of(n_head_kv) {
            return Err(bad(format!(
                "num_attention_heads {n_head} is not a multiple of num_key_value_heads {n_head_kv}"
            )));
        }
        if n_layers == 0 || n_layers > MAX_LAYERS {
            return Err(bad(format!("num_hidden_layers {n_layers} is outside 1..={MAX_LAYERS}")));
        }
        for (what, v) in [
            ("hidden_size", hidden_size),
            ("num_attention_heads", n_head),
            ("num_key_value_heads", n_head_kv),
            ("intermediate_size", self.intermediate_size.unwrap_or(d.intermediate_size)),
            ("head_dim", self.head_dim.unwrap_or(0)),
        ] {
            if v > MAX_DIM {
                return Err(bad(format!("{what} {v} exceeds the limit of {MAX_DIM}")));
            }
        }
        let vocab_size = self.vocab_size.unwrap_or(d.vocab_size);
        if vocab_size == 0 || vocab_size > MAX_VOCAB {
            return Err(bad(format!("vocab_size {vocab_size} is outside 1..={MAX_VOCAB}")));
        }
        let head_dim_field = match self.head_dim {
            Some(h) => Some(h),
            None if d.computes_head_dim => Some(hidden_size / n_head),
            None => None,
        };
        let head_dim = match head_dim_field {
            Some(h) => h,
            None if hidden_size.is_multiple_of(n_head) => hidden_size / n_head,
            None => {
                return Err(bad(format!("hidden_size {hidden_size} is not a multiple of num_attention_heads {n_head}")))
            }
        };
        // The q/k permutation and RoPE both pair dimensions.
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(bad(format!("head dimension {head_dim} must be even and non-zero")));
        }
        Ok(HParams {
            vocab_size,
            hidden_size,
            intermediate_size: self.intermediate_size.unwrap_or(d.intermediate_size),
            n_layers,
            n_head,
            n_head_kv,
            head_dim_field,
            head_dim,
            max_position_embeddings: self.max_position_embeddings.unwrap_or(d.max_position_embeddings),
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope: self.rope_params(),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
        })
    }

    fn rope_params(&self) -> RopeParams {
        let block = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref());
        let f = |k: &str| block.and_then(|b| b.get(k)).and_then(Json::as_f64);
        let s = |k: &str| block.and_then(|b| b.get(k)).and_then(Json::as_str).map(str::to_string);
        // Every config class of ours defaults rope_theta to 10000.0.
        let theta = f("rope_theta").or(self.rope_theta).or(Some(10000.0));
        RopeParams {
            rope_type: s("rope_type").or_else(|| s("type")),
            rope_theta: theta,
            factor: f("factor"),
            low_freq_factor: f("low_freq_factor"),
            high_freq_factor: f("high_freq_factor"),
            original_max_position_embeddings: block
                .and_then(|b| b.get("original_max_position_embeddings"))
                .and_then(Json::as_u64)
                .or_else(|| self.raw.get("original_max_position_embeddings").and_then(Json::as_u64)),
            extrapolation_factor: f("extrapolation_factor"),
            attention_factor: f("attention_factor").or_else(|| f("attn_factor")),
            beta_fast: f("beta_fast"),
            beta_slow: f("beta_slow"),
        }
    }
}

/// `generation_config.json`: the sampling defaults the converter copies into `general.sampling.*`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GenerationConfig {
    #[serde(skip)]
    pub raw: Map<String, Json>,
    #[serde(skip)]
    pub path: PathBuf,
}

impl GenerationConfig {
    /// Reads the file if present. Like the converter, an unreadable or invalid file counts as absent.
    pub fn load(path: &Path) -> Option<GenerationConfig> {
        let text = std::fs::read_to_string(path).ok()?;
        let raw: Map<String, Json> = serde_json::from_str(&text).ok()?;
        Some(GenerationConfig { raw, path: path.to_path_buf() })
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.raw.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &str) -> HParams {
        HfConfig::parse(Path::new("config.json"), s).unwrap().hparams(Path::new("config.json")).unwrap()
    }

    #[test]
    fn llama_defaults_compute_head_dim() {
        let h = cfg(r#"{"model_type":"llama","hidden_size":64,"num_attention_heads":4}"#);
        assert_eq!((h.head_dim_field, h.head_dim, h.n_head_kv, h.vocab_size), (Some(16), 16, 4, 32000));
        assert_eq!(h.rope.rope_theta, Some(10000.0));
        assert_eq!(h.max_position_embeddings, 2048);
    }

    #[test]
    fn qwen2_and_mistral_leave_head_dim_absent() {
        let h = cfg(r#"{"model_type":"qwen2","hidden_size":64,"num_attention_heads":4,"num_key_value_heads":2}"#);
        assert_eq!((h.head_dim_field, h.head_dim, h.max_position_embeddings), (None, 16, 32768));
        let h = cfg(r#"{"model_type":"mistral","hidden_size":64,"num_attention_heads":8,"head_dim":null}"#);
        assert_eq!((h.head_dim_field, h.head_dim, h.n_head_kv), (None, 8, 8));
    }

    #[test]
    fn rope_block_mirrors_type_and_theta() {
        let h = cfg(
            r#"{"rope_theta":500000,"rope_scaling":{"type":"llama3","factor":8.0,"original_max_position_embeddings":8192}}"#,
        );
        assert_eq!(h.rope.rope_type.as_deref(), Some("llama3"));
        assert_eq!(h.rope.rope_theta, Some(500000.0));
        assert_eq!(h.rope.original_max_position_embeddings, Some(8192));
        let h = cfg(r#"{"rope_parameters":{"rope_type":"default","rope_theta":1000000.0}}"#);
        assert_eq!(h.rope.rope_theta, Some(1e6));
    }

    #[test]
    fn rejects_inconsistent_heads() {
        let e = HfConfig::parse(
            Path::new("c.json"),
            r#"{"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":3}"#,
        )
        .unwrap()
        .hparams(Path::new("c.json"))
        .unwrap_err()
        .to_string();
        assert!(e.contains("c.json") && e.contains("multiple"), "{e}");
        assert!(HfConfig::parse(Path::new("c.json"), r#"{"hidden_size":-1}"#).is_err());
        for bad in [r#"{"head_dim":1099511627776}"#, r#"{"vocab_size":1099511627776}"#, r#"{"num_hidden_layers":0}"#] {
            let e = HfConfig::parse(Path::new("c.json"), bad).unwrap().hparams(Path::new("c.json")).unwrap_err();
            assert!(e.to_string().contains("c.json"), "{e}");
        }
    }
}
