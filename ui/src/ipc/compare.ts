// Compare: a model's family of versions (the original and every quantized file), and perplexity measurements.
import { Channel } from "@tauri-apps/api/core";
import { call } from "./errors";
import type { Comparison, PerplexityProgress, PerplexityResult } from "./types";

export function compare(id: string): Promise<Comparison> {
  return call<Comparison>("compare", { id });
}

export function perplexity(
  jobId: string,
  id: string,
  onProgress: (progress: PerplexityProgress) => void,
): Promise<PerplexityResult> {
  const channel = new Channel<PerplexityProgress>(onProgress);
  return call<PerplexityResult>("perplexity_run", { jobId, id, onProgress: channel });
}
