// A fake PocketLM backend for the browser tests: it answers every command of ui/src/ipc/types.ts from memory,
// streams progress and tokens over the real Channel mechanism (through @tauri-apps/api/mocks' callback table, with
// message indices as Tauri sends them), honours job_cancel, and records every call for the tests to inspect.
// Bundled by esbuild and injected with page.addInitScript before the app starts; never part of ui/dist.

import { mockIPC } from "@tauri-apps/api/mocks";
import type {
  ChatEvent,
  ChatMessage,
  Comparison,
  Conversation,
  ConversationSummary,
  GenerationStats,
  GroupTally,
  MemoryCheck,
  ModelDetails,
  ModelEntry,
  PresetOption,
  QuantizePlan,
  QuantizeProgress,
  SamplingSettings,
  SystemInfo,
  TypeTally,
  Version,
} from "../../ui/src/ipc/types";
import { LONG_CONVERSATION_ID, LONG_MODEL_ID, LONG_NAME, LONG_TITLE } from "./long-names";

export interface FakeOptions {
  empty?: boolean; // start with an empty library
  tensors?: number; // tensors per quantization
  tensorDelayMs?: number;
  tokenDelayMs?: number;
  chunkDelayMs?: number;
  availableMemory?: number;
  longNames?: boolean; // add a runnable model with a 120-character name and a saved conversation with a long title
}

interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

declare global {
  interface Window {
    __FAKE_OPTIONS__?: FakeOptions;
    __fake: { calls: Call[]; cancelled: string[]; entries: ModelEntry[] };
    __TAURI_INTERNALS__: { runCallback(id: number, data: unknown): void };
  }
}

const opts: Required<FakeOptions> = {
  empty: false,
  tensors: 30,
  tensorDelayMs: 40,
  tokenDelayMs: 25,
  chunkDelayMs: 60,
  availableMemory: 9.3 * 2 ** 30,
  longNames: false,
  ...(window.__FAKE_OPTIONS__ ?? {}),
};

const GiB = 2 ** 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function entry(partial: Partial<ModelEntry> & Pick<ModelEntry, "id" | "name" | "type" | "sizeBytes">): ModelEntry {
  return {
    path: partial.id,
    format: partial.id.endsWith(".gguf") ? "gguf" : "hf",
    origin: "added",
    architecture: "llama",
    parameters: null,
    family: partial.name,
    derivedFrom: null,
    runnable: partial.id.endsWith(".gguf"),
    error: null,
    ...partial,
  };
}

const SMOL = "/home/user/models/SmolLM2-135M-Instruct";
const LLAMA3B = "/home/user/models/Llama-3.2-3B-Instruct";
const MODELS_DIR = "/home/user/.local/share/pocketlm/models";

let entries: ModelEntry[] = opts.empty
  ? []
  : [
      entry({ id: SMOL, name: "SmolLM2-135M-Instruct", type: "BF16", sizeBytes: 269_060_552, parameters: 134_515_008, origin: "demo", family: "SmolLM2-135M-Instruct" }),
      entry({ id: LLAMA3B, name: "Llama-3.2-3B-Instruct", type: "BF16", sizeBytes: 6_425_499_648, parameters: 3_212_749_824, origin: "hf-cache", family: "Llama-3.2-3B-Instruct" }),
      entry({
        id: `${MODELS_DIR}/Llama-3.2-3B-Instruct-Q4_K_M.gguf`,
        name: "Llama-3.2-3B-Instruct-Q4_K_M",
        type: "Q4_K_M",
        sizeBytes: 2_012_000_000,
        parameters: 3_212_749_824,
        origin: "app",
        family: "Llama-3.2-3B-Instruct",
        derivedFrom: LLAMA3B,
      }),
      entry({ id: "/home/user/.ollama/models/blobs/sha256-74701a8c35f6", name: "llama3.2:1b", type: "Q8_0", sizeBytes: 1_321_082_688, parameters: 1_235_814_432, origin: "ollama", family: "llama3.2:1b", format: "gguf", runnable: true }),
      entry({
        id: "/home/user/Downloads/broken.gguf",
        name: "broken",
        type: "unknown",
        sizeBytes: 1_000_000,
        architecture: null,
        runnable: false,
        error: "/home/user/Downloads/broken.gguf: tensor 'blk.0.attn_q.weight' ends at byte 1,204,224 but the file has 1,000,000 bytes",
      }),
    ];
if (opts.longNames) {
  entries.push(
    entry({
      id: LONG_MODEL_ID,
      name: LONG_NAME,
      type: "Q4_K_M",
      sizeBytes: 105_454_016,
      parameters: 134_515_008,
      family: LONG_NAME,
    }),
  );
}
entries.sort((a, b) => a.name.localeCompare(b.name));

const PRESETS: [string, number, string][] = [
  ["Q8_0", 8.5, "very close to the original, large"],
  ["Q6_K", 6.56, "almost no quality loss"],
  ["Q5_K_M", 5.69, "a small quality loss"],
  ["Q4_K_M", 4.89, "balanced: the usual choice"],
  ["Q4_0", 4.55, "legacy 4-bit, fast on ARM"],
  ["Q3_K_M", 3.91, "noticeable quality loss"],
  ["Q2_K", 3.35, "large quality loss"],
];

function presetSize(source: ModelEntry, bpw: number): number {
  const params = source.parameters ?? source.sizeBytes / 2;
  return Math.round((params * bpw) / 8 / 32) * 32 + 1_785_536; // tensor data + header, 32-byte aligned
}

function plan(id: string): QuantizePlan {
  const source = find(id);
  const presets: PresetOption[] = PRESETS.map(([preset, bpw, description]) => {
    const sizeBytes = presetSize(source, bpw);
    return {
      preset,
      description,
      sizeBytes,
      bitsPerWeight: bpw,
      reductionPercent: (sizeBytes / source.sizeBytes - 1) * 100,
      fitsMemory: sizeBytes * 1.2 < opts.availableMemory,
      recommended: preset === "Q4_K_M",
      error: null,
    };
  });
  return { source, presets, outputDir: MODELS_DIR, warnings: [] };
}

function find(id: string): ModelEntry {
  const e = entries.find((x) => x.id === id);
  if (!e) throw { code: "not_found", message: `No model in the library at ${id}` };
  return e;
}

function groups(e: ModelEntry): GroupTally[] {
  const p = e.parameters ?? 1e8;
  const bpw = (e.sizeBytes * 8) / p;
  const shares: [GroupTally["group"], number, number][] = [
    ["embeddings", 0.21, 1],
    ["attention", 0.25, 120],
    ["feed-forward", 0.53, 90],
    ["norms", 0.01, 61],
  ];
  return shares.map(([group, share, tensors]) => ({ group, tensors, parameters: Math.round(p * share), bytes: Math.round((p * share * bpw) / 8) }));
}

function types(e: ModelEntry): TypeTally[] {
  const p = e.parameters ?? 1e8;
  if (e.type === "Q4_K_M") {
    return [
      { type: "Q4_K", tensors: 150, parameters: Math.round(p * 0.62), bytes: Math.round(e.sizeBytes * 0.55) },
      { type: "Q6_K", tensors: 61, parameters: Math.round(p * 0.37), bytes: Math.round(e.sizeBytes * 0.44) },
      { type: "F32", tensors: 61, parameters: Math.round(p * 0.01), bytes: Math.round(e.sizeBytes * 0.01) },
    ];
  }
  const main = e.type === "BF16" ? "BF16" : e.type.replace(/_[SML]$/, "");
  return [
    { type: main, tensors: 211, parameters: Math.round(p * 0.99), bytes: Math.round(e.sizeBytes * 0.99) },
    { type: "F32", tensors: 61, parameters: Math.round(p * 0.01), bytes: Math.round(e.sizeBytes * 0.01) },
  ];
}

function details(id: string): ModelDetails {
  const e = find(id);
  const byGroup = groups(e);
  const total = byGroup.reduce((t, g) => ({ tensors: t.tensors + g.tensors, parameters: t.parameters + g.parameters, bytes: t.bytes + g.bytes }), { tensors: 0, parameters: 0, bytes: 0 });
  return {
    entry: e,
    metadata: [
      { key: "general.architecture", value: e.architecture ?? "?" },
      { key: "general.name", value: e.name },
      { key: "llama.context_length", value: "8192" },
      { key: "llama.block_count", value: "30" },
      { key: "tokenizer.ggml.tokens", value: "[49152 strings]" },
    ],
    byGroup,
    byType: types(e),
    total,
    bitsPerWeight: (total.bytes * 8) / total.parameters,
    contextLength: 8192,
    layers: 30,
  };
}

function comparison(id: string): Comparison {
  const e = find(id);
  const family = entries.filter((x) => x.family === e.family);
  family.sort((a, b) => (a.derivedFrom === null ? -1 : 0) - (b.derivedFrom === null ? -1 : 0) || b.sizeBytes - a.sizeBytes);
  const first = family[0];
  const versions: Version[] = family.map((v) => ({
    entry: v,
    reductionPercent: (v.sizeBytes / first.sizeBytes - 1) * 100,
    byGroup: groups(v),
    byType: types(v),
    perplexity: perplexities.get(v.id) ?? null,
  }));
  return { family: e.family, versions };
}

const perplexities = new Map<string, NonNullable<Version["perplexity"]>>();
const running = new Map<string, { cancelled: boolean }>();
const cancelled: string[] = [];
const conversations = new Map<string, Conversation>();
if (opts.longNames) {
  const id = LONG_CONVERSATION_ID;
  conversations.set(id, {
    id,
    title: LONG_TITLE,
    modelId: LONG_MODEL_ID,
    modelName: LONG_NAME,
    system: "",
    settings: { temperature: 0.7, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, maxTokens: 512, seed: null },
    messages: [
      { role: "user", content: `${LONG_TITLE}: ${"https://example.com/reports/".padEnd(140, "x")}` },
      { role: "assistant", content: "Sales rose in every region but the north; two supplier contracts need renewing by March.", stats: null },
    ],
    createdAt: "2025-01-02T10:00:00.000Z",
    updatedAt: "2025-01-02T10:05:00.000Z",
  });
}
let loadedId: string | null = null;

/** Delivers `message` on a Channel as Tauri does: `{index, message}` through the callback the Channel registered. */
const nextIndex = new Map<number, number>();
function send(channel: unknown, message: unknown): void {
  const id = (channel as { id: number }).id;
  const index = nextIndex.get(id) ?? 0;
  nextIndex.set(id, index + 1);
  window.__TAURI_INTERNALS__.runCallback(id, { index, message });
}
function end(channel: unknown): void {
  const id = (channel as { id: number }).id;
  window.__TAURI_INTERNALS__.runCallback(id, { index: nextIndex.get(id) ?? 0, end: true });
}

function job(jobId: string) {
  const state = { cancelled: false };
  running.set(jobId, state);
  return state;
}

async function quantizeRun(args: Record<string, unknown>) {
  const { jobId, id, preset, onProgress } = args as { jobId: string; id: string; preset: string; onProgress: unknown };
  const source = find(id);
  const option = plan(id).presets.find((p) => p.preset === preset)!;
  const state = job(jobId);
  const n = opts.tensors;
  const started = performance.now();
  try {
    for (let t = 1; t <= n; t++) {
      await sleep(opts.tensorDelayMs);
      if (state.cancelled) throw { code: "cancelled", message: "Quantization cancelled" };
      const elapsed = (performance.now() - started) / 1000;
      const progress: QuantizeProgress = {
        tensor: t,
        tensors: n,
        tensorName: t === 1 ? "token_embd.weight" : `blk.${Math.floor((t - 2) / 9)}.ffn_up.weight`,
        type: preset.startsWith("Q4") ? "Q4_K" : "Q6_K",
        bytesDone: Math.round((source.sizeBytes * t) / n),
        bytesTotal: source.sizeBytes,
        bytesPerSecond: 52_300_000,
        etaSeconds: ((n - t) * opts.tensorDelayMs) / 1000,
        elapsedSeconds: elapsed,
      };
      send(onProgress, progress);
    }
    const made = entry({
      id: `${MODELS_DIR}/${source.name}-${preset}.gguf`,
      name: `${source.name}-${preset}`,
      type: preset,
      sizeBytes: option.sizeBytes,
      parameters: source.parameters,
      origin: "app",
      family: source.family,
      derivedFrom: source.id,
    });
    entries = [...entries.filter((e) => e.id !== made.id), made].sort((a, b) => a.name.localeCompare(b.name));
    return { entry: made, sizeBytes: option.sizeBytes, predictedBytes: option.sizeBytes, seconds: 72.4, reductionPercent: option.reductionPercent };
  } finally {
    running.delete(jobId);
    end(onProgress);
  }
}

async function perplexityRun(args: Record<string, unknown>) {
  const { jobId, id, onProgress } = args as { jobId: string; id: string; onProgress: unknown };
  const e = find(id);
  const state = job(jobId);
  const chunks = 8;
  const final = e.type === "Q4_K_M" ? 13.91 : e.type === "BF16" ? 13.21 : 13.55;
  try {
    for (let c = 1; c <= chunks; c++) {
      await sleep(opts.chunkDelayMs);
      if (state.cancelled) throw { code: "cancelled", message: "Perplexity cancelled" };
      send(onProgress, { chunk: c, chunks, perplexity: final + (chunks - c) * 0.4, elapsedSeconds: c * 1.5 });
    }
    const result = { perplexity: final, stderr: 0.12, chunks, tokens: chunks * 511, contextSize: 512, seconds: 12 };
    perplexities.set(id, result);
    return result;
  } finally {
    running.delete(jobId);
    end(onProgress);
  }
}

function memoryCheck(id: string, contextSize: number): MemoryCheck {
  const e = find(id);
  const kvBytes = contextSize * 30 * 2 * 576 * 2;
  const neededBytes = e.sizeBytes + kvBytes + 50_000_000;
  return { modelBytes: e.sizeBytes, kvBytes, neededBytes, availableBytes: opts.availableMemory, fits: neededBytes <= opts.availableMemory };
}

const SHORT_REPLY = "The capital of France is Paris. It sits on the Seine and is known for its museums, cafés and the Eiffel Tower.";
const LONG_REPLY = Array.from({ length: 12 }, (_, i) => `Paragraph ${i + 1}: the lighthouse keeper climbed the stairs again, counting the steps as the fog rolled in from the sea.`).join("\n\n");

async function chatGenerate(args: Record<string, unknown>): Promise<GenerationStats> {
  const { jobId, messages, settings, onEvent } = args as { jobId: string; messages: ChatMessage[]; settings: SamplingSettings; onEvent: unknown };
  if (!loadedId) throw { code: "no_model_loaded", message: "Load a model first." };
  const last = messages[messages.length - 1];
  const reply = /long|story/i.test(last.content) ? LONG_REPLY : SHORT_REPLY;
  const tokens = reply.match(/\s*\S+/g) ?? [];
  const state = job(jobId);
  const started = performance.now();
  let generated = 0;
  let stopReason: GenerationStats["stopReason"] = "eos";
  try {
    for (const text of tokens) {
      await sleep(opts.tokenDelayMs);
      if (state.cancelled) {
        stopReason = "cancelled";
        break;
      }
      if (generated >= settings.maxTokens) {
        stopReason = "max_tokens";
        break;
      }
      send(onEvent, { kind: "token", text } satisfies ChatEvent);
      generated++;
    }
    const seconds = (performance.now() - started) / 1000;
    const promptTokens = messages.reduce((s, m) => s + Math.ceil(m.content.length / 4), 12);
    const stats: GenerationStats = {
      promptTokens,
      reusedTokens: 0,
      promptTokensPerSecond: 412.5,
      generatedTokens: generated,
      tokensPerSecond: generated / Math.max(seconds, 0.001),
      timeToFirstTokenMs: opts.tokenDelayMs + 3,
      stopReason,
      contextUsed: promptTokens + generated,
      contextSize: 2048,
      shifted: false,
    };
    send(onEvent, { kind: "done", stats } satisfies ChatEvent);
    return stats;
  } finally {
    running.delete(jobId);
    end(onEvent);
  }
}

function summary(c: Conversation): ConversationSummary {
  return { id: c.id, title: c.title, modelId: c.modelId, modelName: c.modelName, messages: c.messages.length, updatedAt: c.updatedAt };
}

const system: SystemInfo = {
  totalMemory: 16 * GiB,
  availableMemory: opts.availableMemory,
  cpu: "AMD EPYC 7B13 (2 threads)",
  threads: 2,
  kernels: "avx2",
  modelsDir: MODELS_DIR,
  dataDir: "/home/user/.local/share/pocketlm",
  platform: "desktop",
};

const calls: Call[] = [];
window.__fake = { calls, cancelled, get entries() { return entries; } } as Window["__fake"];

mockIPC(async (cmd, payload) => {
  const args = (payload ?? {}) as Record<string, unknown>;
  calls.push({ cmd, args: JSON.parse(JSON.stringify(args)) });
  switch (cmd) {
    case "system_info":
      return system;
    case "library_list":
      return entries;
    case "library_add": {
      const path = String(args.path);
      await sleep(30);
      if (!/\.gguf$/.test(path) && !path.includes("/models/")) {
        throw { code: "invalid_model", message: `${path}: neither a .gguf file nor a folder with config.json and safetensors` };
      }
      if (/corrupt|broken/.test(path)) throw { code: "invalid_model", message: `${path}: not a GGUF file (bad version 4294967295)` };
      const name = path.split("/").pop()!.replace(/\.gguf$/, "");
      const e = entry({ id: path, name, type: "Q4_K_M", sizeBytes: 105_454_016, parameters: 134_515_008, family: name });
      entries = [...entries.filter((x) => x.id !== path), e].sort((a, b) => a.name.localeCompare(b.name));
      return e;
    }
    case "library_remove":
      find(String(args.id));
      entries = entries.filter((e) => e.id !== args.id);
      return null;
    case "library_details":
      return details(String(args.id));
    case "quantize_plan":
      return plan(String(args.id));
    case "quantize_run":
      return quantizeRun(args);
    case "perplexity_run":
      return perplexityRun(args);
    case "compare":
      return comparison(String(args.id));
    case "chat_memory_check":
      return memoryCheck(String(args.id), Number(args.contextSize));
    case "chat_load": {
      const check = memoryCheck(String(args.id), Number(args.contextSize));
      if (!check.fits && !args.force) throw { code: "insufficient_memory", message: "The model does not fit in memory." };
      await sleep(50);
      loadedId = String(args.id);
      return { entry: find(loadedId), contextSize: Number(args.contextSize), memory: check, chatTemplate: true };
    }
    case "chat_unload":
      loadedId = null;
      return null;
    case "chat_generate":
      return chatGenerate(args);
    case "job_cancel": {
      const state = running.get(String(args.jobId));
      cancelled.push(String(args.jobId));
      if (state) state.cancelled = true;
      return state !== undefined;
    }
    case "conversations_list":
      return [...conversations.values()].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)).map(summary);
    case "conversation_get": {
      const c = conversations.get(String(args.id));
      if (!c) throw { code: "not_found", message: `No conversation ${args.id}` };
      return c;
    }
    case "conversation_save": {
      const c = args.conversation as Conversation;
      conversations.set(c.id, JSON.parse(JSON.stringify(c)));
      return summary(c);
    }
    case "conversation_delete":
      conversations.delete(String(args.id));
      return null;
    case "plugin:dialog|open":
      return null;
    default:
      throw { code: "internal", message: `The fake backend has no command ${cmd}` };
  }
});
