// The chat's state and actions, apart from its rendering: the loaded model, the open conversation, the reply being
// streamed, and the saved conversations. Module-level signals, so a reply keeps streaming while the user looks at
// another view. Every finished turn is saved with conversation_save.
import { signal } from "@preact/signals";
import * as chat from "../ipc/chat";
import * as conversations from "../ipc/conversations";
import * as jobs from "../ipc/jobs";
import { toAppError } from "../ipc/errors";
import type {
  AppError,
  ChatMessage,
  Conversation,
  ConversationSummary,
  GenerationStats,
  LoadedModel,
  MemoryCheck,
  SamplingSettings,
} from "../ipc/types";
import { entryById } from "../state";

export const DEFAULT_SETTINGS: SamplingSettings = {
  temperature: 0.7,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1.0,
  maxTokens: 512,
  seed: null,
};

export const CONTEXT_SIZES = [1024, 2048, 4096, 8192];

export const modelId = signal<string | null>(null);
export const contextSize = signal(2048);
export const loaded = signal<LoadedModel | null>(null);
export const loading = signal(false);
export const memoryWarning = signal<MemoryCheck | null>(null);
export const conversation = signal<Conversation>(blankConversation());
export const streaming = signal<{ jobId: string; text: string } | null>(null);
export const error = signal<AppError | null>(null);
export const summaries = signal<ConversationSummary[]>([]);
/** A quiet line under the messages, e.g. "Reply stopped." when a reply was cancelled before it had figures. */
export const notice = signal<string | null>(null);

function nowIso(): string {
  return new Date().toISOString();
}

function blankConversation(): Conversation {
  const now = nowIso();
  return {
    id: crypto.randomUUID(),
    title: "New chat",
    modelId: null,
    modelName: null,
    system: "",
    settings: { ...DEFAULT_SETTINGS },
    messages: [],
    createdAt: now,
    updatedAt: now,
  };
}

export function resetChat(): void {
  modelId.value = null;
  contextSize.value = 2048;
  loaded.value = null;
  loading.value = false;
  memoryWarning.value = null;
  conversation.value = blankConversation();
  streaming.value = null;
  error.value = null;
  summaries.value = [];
  notice.value = null;
}

/** A title from the first user message: its first line, at most 48 characters. */
export function titleFrom(messages: ChatMessage[]): string {
  const first = messages.find((m) => m.role === "user")?.content.trim().split("\n")[0] ?? "";
  if (!first) return "New chat";
  return first.length > 48 ? `${first.slice(0, 47).trimEnd()}…` : first;
}

export async function refreshConversations(): Promise<void> {
  try {
    summaries.value = await conversations.list();
  } catch (e) {
    error.value = toAppError(e);
  }
}

/** Step one of loading: ask whether the model fits; if it does, load it, else show the warning. */
export async function loadModel(force = false): Promise<void> {
  const id = modelId.peek();
  if (!id || loading.peek()) return;
  loading.value = true;
  error.value = null;
  try {
    if (!force) {
      const check = await chat.memoryCheck(id, contextSize.peek());
      if (!check.fits) {
        memoryWarning.value = check;
        return;
      }
    }
    memoryWarning.value = null;
    loaded.value = await chat.load(id, contextSize.peek(), force);
  } catch (e) {
    const err = toAppError(e);
    if (err.code === "insufficient_memory" && !force) {
      // Memory changed between the check and the load: ask again with fresh numbers.
      memoryWarning.value = await chat.memoryCheck(id, contextSize.peek()).catch(() => null);
      if (!memoryWarning.peek()) error.value = err;
    } else {
      error.value = err;
    }
  } finally {
    loading.value = false;
  }
}

export function dismissMemoryWarning(): void {
  memoryWarning.value = null;
}

/** Frees the loaded model; the input stays disabled until another is loaded. Not while a reply streams. */
export async function unloadModel(): Promise<void> {
  if (!loaded.peek() || streaming.peek() || loading.peek()) return;
  error.value = null;
  try {
    await chat.unload();
    loaded.value = null;
    memoryWarning.value = null;
  } catch (e) {
    error.value = toAppError(e);
  }
}

async function save(): Promise<void> {
  const c = conversation.peek();
  if (c.messages.length === 0) return;
  try {
    await conversations.save(c);
    await refreshConversations();
  } catch (e) {
    error.value = toAppError(e);
  }
}

function update(patch: Partial<Conversation>): void {
  conversation.value = { ...conversation.peek(), ...patch, updatedAt: nowIso() };
}

/** Answers the last message of `history` (a user turn) and appends the reply. */
async function answer(history: ChatMessage[]): Promise<void> {
  const model = loaded.peek();
  if (!model || streaming.peek()) return;
  const jobId = jobs.newJobId();
  update({
    messages: history,
    title: titleFrom(history),
    modelId: model.entry.id,
    modelName: model.entry.name,
  });
  streaming.value = { jobId, text: "" };
  error.value = null;
  notice.value = null;
  let stats: GenerationStats | null = null;
  try {
    const c = conversation.peek();
    stats = await chat.generate(jobId, c.system, history, c.settings, (event) => {
      const s = streaming.peek();
      if (!s || s.jobId !== jobId) return;
      if (event.kind === "token") streaming.value = { jobId, text: s.text + event.text };
      else stats = event.stats;
    });
  } catch (e) {
    const err = toAppError(e);
    if (err.code === "cancelled") notice.value = "Reply stopped.";
    else error.value = err;
  }
  const text = streaming.peek()?.text ?? "";
  streaming.value = null;
  if (text.length > 0 || stats) {
    update({ messages: [...history, { role: "assistant", content: text, stats }] });
  }
  await save();
}

export async function send(text: string): Promise<boolean> {
  const content = text.trim();
  if (!content || !loaded.peek() || streaming.peek()) return false;
  void answer([...conversation.peek().messages, { role: "user", content }]);
  return true;
}

export async function stop(): Promise<void> {
  const s = streaming.peek();
  if (s) await jobs.cancel(s.jobId).catch(() => false);
}

/** Drops the last reply (if any) and answers the last user message again. */
export async function regenerate(): Promise<void> {
  const msgs = conversation.peek().messages;
  let end = msgs.length;
  while (end > 0 && msgs[end - 1].role === "assistant") end--;
  if (end === 0) return;
  await answer(msgs.slice(0, end));
}

/** Replaces user message `index` with `text`, forgets everything after it and answers it. */
export async function editAndResend(index: number, text: string): Promise<void> {
  const msgs = conversation.peek().messages;
  const content = text.trim();
  if (!content || msgs[index]?.role !== "user") return;
  await answer([...msgs.slice(0, index), { role: "user", content }]);
}

export function setSystem(system: string): void {
  update({ system });
}

export function setSettings(settings: SamplingSettings): void {
  update({ settings });
}

export function newChat(): void {
  if (streaming.peek()) return;
  const c = conversation.peek();
  const fresh = blankConversation();
  fresh.system = c.system;
  fresh.settings = { ...c.settings };
  conversation.value = fresh;
  error.value = null;
  notice.value = null;
}

export async function openConversation(id: string): Promise<void> {
  if (streaming.peek()) return;
  try {
    const c = await conversations.get(id);
    conversation.value = c;
    error.value = null;
    notice.value = null;
    if (c.modelId && !loaded.peek() && entryById(c.modelId)) modelId.value = c.modelId;
  } catch (e) {
    error.value = toAppError(e);
  }
}

export async function deleteConversation(id: string): Promise<void> {
  try {
    await conversations.remove(id);
    if (conversation.peek().id === id && !streaming.peek()) newChat();
    await refreshConversations();
  } catch (e) {
    error.value = toAppError(e);
  }
}
