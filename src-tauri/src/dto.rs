//! What crosses the IPC boundary, mirroring `ui/src/ipc/types.ts` field for field (camelCase in JSON).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    pub total_memory: u64,
    pub available_memory: u64,
    pub cpu: String,
    pub threads: usize,
    pub kernels: String,
    pub models_dir: String,
    pub data_dir: String,
    pub platform: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub path: String,
    pub format: &'static str,
    pub origin: &'static str,
    pub architecture: Option<String>,
    pub parameters: Option<u64>,
    #[serde(rename = "type")]
    pub ty: String,
    pub size_bytes: u64,
    pub family: String,
    pub derived_from: Option<String>,
    pub runnable: bool,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub tensors: u64,
    pub parameters: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupTally {
    pub group: &'static str,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeTally {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Clone, Debug, Serialize)]
pub struct MetadataItem {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelDetails {
    pub entry: ModelEntry,
    pub metadata: Vec<MetadataItem>,
    pub by_group: Vec<GroupTally>,
    pub by_type: Vec<TypeTally>,
    pub total: Tally,
    pub bits_per_weight: f64,
    pub context_length: Option<u64>,
    pub layers: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresetOption {
    pub preset: String,
    pub description: String,
    pub size_bytes: u64,
    pub bits_per_weight: f64,
    pub reduction_percent: f64,
    pub fits_memory: bool,
    pub recommended: bool,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantizePlan {
    pub source: ModelEntry,
    pub presets: Vec<PresetOption>,
    pub output_dir: String,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantizeProgress {
    pub tensor: usize,
    pub tensors: usize,
    pub tensor_name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub bytes_per_second: f64,
    pub eta_seconds: Option<f64>,
    pub elapsed_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantizeResult {
    pub entry: ModelEntry,
    pub size_bytes: u64,
    pub predicted_bytes: u64,
    pub seconds: f64,
    pub reduction_percent: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub entry: ModelEntry,
    pub reduction_percent: f64,
    pub by_group: Vec<GroupTally>,
    pub by_type: Vec<TypeTally>,
    pub perplexity: Option<PerplexityResult>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub family: String,
    pub versions: Vec<Version>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PerplexityProgress {
    pub chunk: usize,
    pub chunks: usize,
    pub perplexity: f64,
    pub elapsed_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerplexityResult {
    pub perplexity: f64,
    pub stderr: f64,
    pub chunks: usize,
    pub tokens: usize,
    pub context_size: usize,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryCheck {
    pub model_bytes: u64,
    pub kv_bytes: u64,
    pub needed_bytes: u64,
    pub available_bytes: u64,
    pub fits: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedModel {
    pub entry: ModelEntry,
    pub context_size: usize,
    pub memory: MemoryCheck,
    pub chat_template: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingSettings {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub max_tokens: usize,
    pub seed: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<GenerationStats>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub prompt_tokens_per_second: f64,
    pub generated_tokens: usize,
    pub tokens_per_second: f64,
    pub time_to_first_token_ms: f64,
    pub stop_reason: String,
    pub context_used: usize,
    pub context_size: usize,
    pub shifted: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ChatEvent {
    Token { text: String },
    Done { stats: GenerationStats },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub id: String,
    pub title: String,
    pub model_id: Option<String>,
    pub model_name: Option<String>,
    pub messages: usize,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub model_id: Option<String>,
    pub model_name: Option<String>,
    pub system: String,
    pub settings: SamplingSettings,
    pub messages: Vec<ChatMessage>,
    pub created_at: String,
    pub updated_at: String,
}
