//! Hugging Face tensor names → GGUF names for Llama-family and Qwen2 checkpoints (gguf-py `tensor_mapping.py`,
//! the entries these architectures use), with the shape each must have.

/// What a tensor is, which fixes its expected shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    TokenEmbd,
    Output,
    OutputNorm,
    AttnNorm,
    FfnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnOutput,
    FfnGate,
    FfnUp,
    FfnDown,
}

/// A mapped tensor: its GGUF name, role, layer, and whether it is a bias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    pub gguf_name: String,
    pub role: Role,
    pub layer: Option<u64>,
    pub bias: bool,
}

/// What the converter does with a checkpoint tensor name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapping {
    Tensor(Mapped),
    /// Dropped on purpose (rotary caches, attention masks, multimodal towers).
    Skip,
    /// "Can not map tensor": the converter stops.
    Unknown,
}

/// The name after `filter_tensors`: `language_model.` and (for Llama) `text_model.` removed; `None` when the
/// tensor belongs to a vision/audio part and is dropped (`TextModel.filter_tensors`).
pub fn filter_name(name: &str, llama: bool) -> Option<String> {
    const PREFIXES: [&str; 10] = [
        "mlp",
        "vit.",
        "vpm.",
        "siglip2.",
        "conformer.",
        "merger.",
        "resampler.",
        "sound_encoder.",
        "sound_projection.",
        "speech_embeddings.",
    ];
    const PARTS: [&str; 17] = [
        "visual.",
        "vision.",
        "audio.",
        "talker.",
        "vision_",
        "audio_",
        "token2wav.",
        "code2wav.",
        "projector.",
        "pre_mm_projector_norm",
        "image_newline",
        "view_seperator",
        "patch_embed",
        "patch_embedding",
        "patch_merger.",
        "patch_merge_mlp.",
        "model.connector.",
    ];
    let mut name = name.to_string();
    if llama {
        name = name.replace("text_model.", "");
    }
    if PREFIXES.iter().any(|p| name.starts_with(p)) || PARTS.iter().any(|p| name.contains(p)) {
        return None;
    }
    Some(name.replace("language_model.", ""))
}

/// Maps a (filtered) HF tensor name for a model of `n_layers` blocks.
pub fn map_name(name: &str, n_layers: u64) -> Mapping {
    if name.ends_with(".attention.masked_bias")
        || name.ends_with(".attention.bias")
        || name.ends_with(".rotary_emb.inv_freq")
    {
        return Mapping::Skip;
    }
    let (stem, bias) = if let Some(s) = name.strip_suffix(".weight") {
        (s, false)
    } else if let Some(s) = name.strip_suffix(".bias") {
        (s, true)
    } else {
        return Mapping::Unknown;
    };
    let suffix = if bias { "bias" } else { "weight" };
    let global = match stem {
        "model.embed_tokens" => Some((Role::TokenEmbd, "token_embd")),
        "lm_head" => Some((Role::Output, "output")),
        "model.norm" => Some((Role::OutputNorm, "output_norm")),
        _ => None,
    };
    if let Some((role, gguf)) = global {
        return Mapping::Tensor(Mapped { gguf_name: format!("{gguf}.{suffix}"), role, layer: None, bias });
    }
    let Some(rest) = stem.strip_prefix("model.layers.") else {
        return Mapping::Unknown;
    };
    let Some((layer, part)) = rest.split_once('.') else {
        return Mapping::Unknown;
    };
    // The converter's name map has entries for blocks 0..n_layers only, in plain decimal.
    let Ok(layer) = layer.parse::<u64>() else {
        return Mapping::Unknown;
    };
    if layer >= n_layers || layer.to_string() != rest.split_once('.').map(|x| x.0).unwrap_or("") {
        return Mapping::Unknown;
    }
    let (role, gguf) = match part {
        "input_layernorm" => (Role::AttnNorm, "attn_norm"),
        "post_attention_layernorm" => (Role::FfnNorm, "ffn_norm"),
        "self_attn.q_proj" => (Role::AttnQ, "attn_q"),
        "self_attn.k_proj" => (Role::AttnK, "attn_k"),
        "self_attn.v_proj" => (Role::AttnV, "attn_v"),
        "self_attn.o_proj" => (Role::AttnOutput, "attn_output"),
        "mlp.gate_proj" => (Role::FfnGate, "ffn_gate"),
        "mlp.up_proj" => (Role::FfnUp, "ffn_up"),
        "mlp.down_proj" => (Role::FfnDown, "ffn_down"),
        _ => return Mapping::Unknown,
    };
    Mapping::Tensor(Mapped { gguf_name: format!("blk.{layer}.{gguf}.{suffix}"), role, layer: Some(layer), bias })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_llama_names() {
        let m = |n: &str| match map_name(n, 2) {
            Mapping::Tensor(t) => t.gguf_name,
            other => format!("{other:?}"),
        };
        assert_eq!(m("model.embed_tokens.weight"), "token_embd.weight");
        assert_eq!(m("lm_head.weight"), "output.weight");
        assert_eq!(m("model.norm.weight"), "output_norm.weight");
        assert_eq!(m("model.layers.1.self_attn.o_proj.weight"), "blk.1.attn_output.weight");
        assert_eq!(m("model.layers.0.self_attn.k_proj.bias"), "blk.0.attn_k.bias");
        assert_eq!(m("model.layers.0.mlp.down_proj.weight"), "blk.0.ffn_down.weight");
        assert_eq!(m("model.layers.0.post_attention_layernorm.weight"), "blk.0.ffn_norm.weight");
        assert_eq!(m("model.layers.0.self_attn.rotary_emb.inv_freq"), "Skip");
        assert_eq!(m("model.layers.2.mlp.up_proj.weight"), "Unknown");
        assert_eq!(m("model.layers.01.mlp.up_proj.weight"), "Unknown");
        assert_eq!(m("model.layers.0.mlp.experts.weight"), "Unknown");
    }

    #[test]
    fn filters_like_the_converter() {
        assert_eq!(filter_name("language_model.model.norm.weight", false).as_deref(), Some("model.norm.weight"));
        assert_eq!(filter_name("model.text_model.norm.weight", true).as_deref(), Some("model.norm.weight"));
        assert_eq!(filter_name("model.vision_tower.x.weight", true), None);
    }
}
