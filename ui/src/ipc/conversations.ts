// Conversations: saved chats (kept by the backend in app data).
import { call } from "./errors";
import type { Conversation, ConversationSummary } from "./types";

/** Newest first. */
export function list(): Promise<ConversationSummary[]> {
  return call<ConversationSummary[]>("conversations_list");
}

export function get(id: string): Promise<Conversation> {
  return call<Conversation>("conversation_get", { id });
}

/** Creates or replaces (by id). */
export function save(conversation: Conversation): Promise<ConversationSummary> {
  return call<ConversationSummary>("conversation_save", { conversation });
}

export function remove(id: string): Promise<void> {
  return call<void>("conversation_delete", { id });
}
