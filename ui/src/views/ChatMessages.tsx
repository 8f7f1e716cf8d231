// The message list: user and assistant turns, the reply being streamed, per-reply figures, Edit and Regenerate.
// While a reply streams the list stays pinned to the bottom unless the user scrolled up to read; the streaming
// message reserves room for its figures line so nothing jumps when the reply finishes.
import { useSignal } from "@preact/signals";
import { useLayoutEffect, useRef } from "preact/hooks";
import type { ChatMessage, GenerationStats } from "../ipc/types";
import { formatCount, formatMs, formatTokensPerSecond } from "../format";
import { Icon } from "../components/Icon";

const STOP_REASONS: Record<GenerationStats["stopReason"], string | null> = {
  eos: null,
  max_tokens: "stopped at the token limit",
  cancelled: "stopped",
  context_full: "context full",
};

export function statsText(s: GenerationStats): string {
  // A reply stopped before its first token has no speed or first-token time to show.
  const parts =
    s.generatedTokens === 0
      ? ["no tokens", `context ${formatCount(s.contextUsed)} / ${formatCount(s.contextSize)}`]
      : [
          formatTokensPerSecond(s.tokensPerSecond),
          `first token ${formatMs(s.timeToFirstTokenMs)}`,
          `context ${formatCount(s.contextUsed)} / ${formatCount(s.contextSize)}`,
        ];
  const reason = STOP_REASONS[s.stopReason];
  if (reason) parts.push(reason);
  if (s.shifted) parts.push("oldest part forgotten");
  return parts.join(" · ");
}

interface Props {
  messages: ChatMessage[];
  streamingText: string | null;
  canAct: boolean;
  onRegenerate: () => void;
  onEdit: (index: number, text: string) => void;
}

export function ChatMessages({ messages, streamingText, canAct, onRegenerate, onEdit }: Props) {
  const listRef = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  const editing = useSignal<{ index: number; text: string } | null>(null);

  useLayoutEffect(() => {
    const el = listRef.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [messages, streamingText]);

  const lastAssistant = messages.length > 0 && messages[messages.length - 1].role === "assistant";
  const lastIsUser = messages.length > 0 && messages[messages.length - 1].role === "user";

  return (
    <div
      class="messages"
      ref={listRef}
      onScroll={(e) => {
        const el = e.currentTarget;
        pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
      }}
      aria-live="off"
    >
      {messages.map((m, i) => {
        const isEditing = editing.value?.index === i;
        return (
          <div class={`message message-${m.role}`} data-testid="chat-message" data-role={m.role} key={i}>
            {isEditing ? (
              <form
                class="edit-form"
                onSubmit={(e) => {
                  e.preventDefault();
                  const t = editing.value!.text;
                  editing.value = null;
                  onEdit(i, t);
                }}
              >
                <textarea
                  class="input textarea"
                  value={editing.value!.text}
                  rows={3}
                  aria-label="Edit message"
                  data-testid="chat-edit-input"
                  onInput={(e) => (editing.value = { index: i, text: e.currentTarget.value })}
                  onKeyDown={(e) => {
                    if (e.key === "Escape") {
                      e.stopPropagation();
                      editing.value = null;
                    }
                  }}
                />
                <div class="edit-actions">
                  <button type="button" class="button button-small" onClick={() => (editing.value = null)}>
                    Cancel
                  </button>
                  <button type="submit" class="button button-small button-primary" data-testid="chat-edit-send">
                    Send
                  </button>
                </div>
              </form>
            ) : (
              <div class="message-body">{m.content}</div>
            )}
            {m.role === "assistant" && (
              <div class="message-meta">
                {m.stats && (
                  <span class="stats" data-testid="chat-stats">
                    {statsText(m.stats)}
                  </span>
                )}
                {i === messages.length - 1 && canAct && streamingText === null && (
                  <button type="button" class="text-button" onClick={onRegenerate} data-testid="chat-regenerate">
                    <Icon name="refresh" size={14} /> Regenerate
                  </button>
                )}
              </div>
            )}
            {m.role === "user" && !isEditing && canAct && streamingText === null && (
              <div class="message-meta message-meta-user">
                <button
                  type="button"
                  class="text-button"
                  onClick={() => (editing.value = { index: i, text: m.content })}
                  data-testid="chat-edit"
                  aria-label="Edit this message and send it again"
                >
                  <Icon name="edit" size={14} /> Edit
                </button>
              </div>
            )}
          </div>
        );
      })}
      {streamingText !== null && (
        <div class="message message-assistant message-streaming" data-testid="chat-message" data-role="assistant">
          <div class="message-body">
            {streamingText}
            <span class="caret" aria-hidden="true" />
          </div>
          <div class="message-meta">
            <span class="stats muted">{streamingText.length === 0 ? "Reading the prompt…" : "Writing…"}</span>
          </div>
        </div>
      )}
      {lastIsUser && streamingText === null && canAct && !lastAssistant && (
        <div class="message-meta">
          <button type="button" class="text-button" onClick={onRegenerate} data-testid="chat-regenerate">
            <Icon name="refresh" size={14} /> Answer again
          </button>
        </div>
      )}
    </div>
  );
}
