// The contract between the web UI and the Rust backend (src-tauri). Every command the UI calls, every event a
// Channel carries and every error is typed here; src-tauri/src/dto.rs mirrors it with serde (camelCase fields).
// Sizes are bytes, times are seconds unless a name says otherwise. Numbers that can exceed 2^53 never occur here.

/** What every failed command rejects with. `code` is stable and the UI acts on it; `message` is for people. */
export interface AppError {
  code: ErrorCode;
  message: string;
}

export type ErrorCode =
  | "invalid_model" // the file or folder is not a model we can read (message names the file and the fault)
  | "not_found" // no such library entry, conversation or file
  | "unsupported" // a real model, but an architecture or type we cannot run or quantize
  | "cancelled" // the job was cancelled through jobs.cancel
  | "busy" // another job of the same kind is running
  | "no_model_loaded" // chat without a loaded model
  | "prompt_too_long" // the prompt does not fit the context
  | "insufficient_memory" // chat_load refused: the model will not fit (retry with force)
  | "io" // reading or writing a file failed
  | "internal";

// ---------------------------------------------------------------------------------------------------------------
// system

export interface SystemInfo {
  totalMemory: number;
  availableMemory: number;
  cpu: string; // "AMD EPYC 7B13 (2 threads)"
  threads: number;
  kernels: string; // "avx512+vnni" | "avx2+vnni" | "avx2" | "neon+dotprod" | "neon" | "scalar"
  modelsDir: string; // where the app writes quantized files
  dataDir: string; // app data (library.json, conversations/)
  platform: "desktop" | "mobile";
}

// ---------------------------------------------------------------------------------------------------------------
// library

export type ModelFormat = "hf" | "gguf";
/** Where an entry was found: added by the user, written by the app, or discovered on the machine. */
export type ModelOrigin = "added" | "app" | "demo" | "hf-cache" | "ollama" | "lm-studio";

export interface ModelEntry {
  id: string; // stable key: the canonical path
  name: string; // "SmolLM2-135M-Instruct", "llama3.2:1b" for Ollama
  path: string; // the .gguf file or the Hugging Face folder
  format: ModelFormat;
  origin: ModelOrigin;
  architecture: string | null; // "llama", "qwen2"
  parameters: number | null; // weight count
  type: string; // "BF16", "F32", "Q4_K_M", "Q4_1", "mixed" …
  sizeBytes: number; // on disk (a folder: its weight files)
  family: string; // groups versions of one model for the compare view: the base model's name
  derivedFrom: string | null; // id of the entry this file was quantized from, when the app made it
  runnable: boolean; // a GGUF the chat engine can run
  error: string | null; // set when the entry could not be read; the rest is best effort
}

export interface Tally {
  tensors: number;
  parameters: number;
  bytes: number;
}

export interface GroupTally extends Tally {
  group: "embeddings" | "attention" | "feed-forward" | "output" | "norms" | "other";
}

export interface TypeTally extends Tally {
  type: string; // ggml type: "Q4_K", "Q6_K", "F32", …
}

export interface MetadataItem {
  key: string;
  value: string; // rendered; long arrays summarised ("[49152 strings]")
}

export interface ModelDetails {
  entry: ModelEntry;
  metadata: MetadataItem[];
  byGroup: GroupTally[];
  byType: TypeTally[];
  total: Tally;
  bitsPerWeight: number;
  contextLength: number | null;
  layers: number | null;
}

// ---------------------------------------------------------------------------------------------------------------
// quantize

export interface PresetOption {
  preset: string; // "Q4_K_M"
  description: string; // llama.cpp's: "4.58G, +0.1754 ppl @ Llama-3-8B" style, or ours
  sizeBytes: number; // the exact output file size (shapes and type rules; header included)
  bitsPerWeight: number;
  reductionPercent: number; // vs the source on disk, negative = smaller ("−68.7%")
  fitsMemory: boolean; // output size + working set ≤ available memory on this device
  recommended: boolean; // Q4_K_M
  error: string | null; // the preset cannot apply to this model (then sizes are 0)
}

export interface QuantizePlan {
  source: ModelEntry;
  presets: PresetOption[];
  outputDir: string; // where the result goes by default
  warnings: string[]; // e.g. requantizing from a 4-bit file
}

/** Sent over the progress Channel of quantize_run, at least once per tensor. */
export interface QuantizeProgress {
  tensor: number; // 1-based
  tensors: number;
  tensorName: string;
  type: string; // the tensor's output type
  bytesDone: number; // source bytes read so far
  bytesTotal: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  elapsedSeconds: number;
}

export interface QuantizeResult {
  entry: ModelEntry; // the new file, already in the library
  sizeBytes: number;
  predictedBytes: number; // equals sizeBytes
  seconds: number;
  reductionPercent: number;
}

// ---------------------------------------------------------------------------------------------------------------
// compare

export interface Version {
  entry: ModelEntry;
  reductionPercent: number; // vs the first (largest/original) version
  byGroup: GroupTally[];
  byType: TypeTally[];
  perplexity: PerplexityResult | null; // the last measurement, kept in app data
}

export interface Comparison {
  family: string;
  versions: Version[]; // original first, then by size descending
}

export interface PerplexityProgress {
  chunk: number; // 1-based
  chunks: number;
  perplexity: number; // running estimate
  elapsedSeconds: number;
}

export interface PerplexityResult {
  perplexity: number;
  stderr: number; // ± standard error of the estimate
  chunks: number;
  tokens: number; // scored tokens
  contextSize: number;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------------
// chat

export interface MemoryCheck {
  modelBytes: number;
  kvBytes: number; // the KV cache at the context size
  neededBytes: number;
  availableBytes: number;
  fits: boolean;
}

export interface LoadedModel {
  entry: ModelEntry;
  contextSize: number;
  memory: MemoryCheck;
  chatTemplate: boolean; // false: the file has none and a generic template is used
}

export interface SamplingSettings {
  temperature: number; // 0 = greedy
  topK: number; // 0 = off
  topP: number; // 1 = off
  minP: number; // 0 = off
  repeatPenalty: number; // 1 = off
  maxTokens: number;
  seed: number | null; // null = random
}

export type Role = "system" | "user" | "assistant";

export interface ChatMessage {
  role: Role;
  content: string;
  stats?: GenerationStats | null; // on assistant messages
}

export type StopReason = "eos" | "max_tokens" | "cancelled" | "context_full";

export interface GenerationStats {
  promptTokens: number;
  reusedTokens: number; // prompt tokens served from the KV cache
  promptTokensPerSecond: number;
  generatedTokens: number;
  tokensPerSecond: number;
  timeToFirstTokenMs: number;
  stopReason: StopReason;
  contextUsed: number;
  contextSize: number;
  shifted: boolean; // the context was shifted (the oldest part forgotten)
}

/** Sent over the Channel of chat_generate. */
export type ChatEvent =
  | { kind: "token"; text: string } // a piece of the reply (whole UTF-8 characters)
  | { kind: "done"; stats: GenerationStats };

export interface ConversationSummary {
  id: string;
  title: string;
  modelId: string | null;
  modelName: string | null;
  messages: number;
  updatedAt: string; // RFC 3339
}

export interface Conversation {
  id: string;
  title: string;
  modelId: string | null;
  modelName: string | null;
  system: string;
  settings: SamplingSettings;
  messages: ChatMessage[]; // user/assistant turns; the system prompt is kept apart
  createdAt: string;
  updatedAt: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Commands (names as registered in src-tauri; arguments are camelCase as Tauri passes them):
//
// system_info() -> SystemInfo
// library_list() -> ModelEntry[]                        the library and every discovered model, sorted by name
// library_add(path: string) -> ModelEntry               a .gguf file or a Hugging Face folder; invalid_model if not
// library_remove(id: string) -> void                    forgets an entry (files the app made are deleted too)
// library_details(id: string) -> ModelDetails
// quantize_plan(id: string) -> QuantizePlan
// quantize_run(jobId: string, id: string, preset: string, onProgress: Channel<QuantizeProgress>) -> QuantizeResult
// perplexity_run(jobId: string, id: string, onProgress: Channel<PerplexityProgress>) -> PerplexityResult
// compare(id: string) -> Comparison                     the family of the entry
// chat_memory_check(id: string, contextSize: number) -> MemoryCheck
// chat_load(id: string, contextSize: number, force: boolean) -> LoadedModel
// chat_unload() -> void
// chat_generate(jobId: string, system: string, messages: ChatMessage[], settings: SamplingSettings,
//               onEvent: Channel<ChatEvent>) -> GenerationStats   messages end with the user turn to answer
// job_cancel(jobId: string) -> boolean                  true if a job with that id was running
// conversations_list() -> ConversationSummary[]         newest first
// conversation_get(id: string) -> Conversation
// conversation_save(conversation: Conversation) -> ConversationSummary   creates or replaces (by id)
// conversation_delete(id: string) -> void
