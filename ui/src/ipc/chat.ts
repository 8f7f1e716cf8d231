// Chat: the loaded model and generation; tokens stream over a Channel as ChatEvents.
import { Channel } from "@tauri-apps/api/core";
import { call } from "./errors";
import type { ChatEvent, ChatMessage, GenerationStats, LoadedModel, MemoryCheck, SamplingSettings } from "./types";

export function memoryCheck(id: string, contextSize: number): Promise<MemoryCheck> {
  return call<MemoryCheck>("chat_memory_check", { id, contextSize });
}

/** Loads a model; without `force` it rejects with `insufficient_memory` when the model will not fit. */
export function load(id: string, contextSize: number, force: boolean): Promise<LoadedModel> {
  return call<LoadedModel>("chat_load", { id, contextSize, force });
}

export function unload(): Promise<void> {
  return call<void>("chat_unload");
}

/** Answers the last (user) message. `onEvent` sees every token, then `done`; the promise resolves with the same
 *  stats as `done`. */
export function generate(
  jobId: string,
  system: string,
  messages: ChatMessage[],
  settings: SamplingSettings,
  onEvent: (event: ChatEvent) => void,
): Promise<GenerationStats> {
  const channel = new Channel<ChatEvent>(onEvent);
  return call<GenerationStats>("chat_generate", { jobId, system, messages, settings, onEvent: channel });
}
