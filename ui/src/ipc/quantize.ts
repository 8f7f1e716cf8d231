// Quantize: the plan (every preset with its exact output size) and the run, which streams progress over a Channel.
import { Channel } from "@tauri-apps/api/core";
import { call } from "./errors";
import type { QuantizePlan, QuantizeProgress, QuantizeResult } from "./types";

export function plan(id: string): Promise<QuantizePlan> {
  return call<QuantizePlan>("quantize_plan", { id });
}

/** Quantizes entry `id` to `preset`. Rejects with `cancelled` after jobs.cancel(jobId), and then no file exists. */
export function run(
  jobId: string,
  id: string,
  preset: string,
  onProgress: (progress: QuantizeProgress) => void,
): Promise<QuantizeResult> {
  const channel = new Channel<QuantizeProgress>(onProgress);
  return call<QuantizeResult>("quantize_run", { jobId, id, preset, onProgress: channel });
}
