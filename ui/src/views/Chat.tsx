// Chat: pick a runnable model and load it (after a memory check), talk to it with streamed replies, and keep
// conversations. State and actions live in chatSession.ts; this file lays them out.
import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { navigate, runnableEntries, takeHandOver } from "../state";
import { formatBytes, formatCount, formatWhen } from "../format";
import { EmptyState } from "../components/EmptyState";
import { ErrorBanner } from "../components/ErrorBanner";
import { Icon } from "../components/Icon";
import { ChatMessages } from "./ChatMessages";
import { ChatSettings } from "./ChatSettings";
import * as session from "./chatSession";

export function Chat() {
  const models = runnableEntries.value;
  const draft = useSignal("");
  const showSettings = useSignal(false);
  const showHistory = useSignal(false);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    const handed = takeHandOver("chat");
    if (handed) session.modelId.value = handed;
    else if (!session.modelId.peek() || !models.some((m) => m.id === session.modelId.peek())) {
      session.modelId.value = session.loaded.peek()?.entry.id ?? models[0]?.id ?? null;
    }
  }, [models.length]);

  useEffect(() => {
    void session.refreshConversations();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && session.streaming.peek()) {
        e.preventDefault();
        void session.stop();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const loaded = session.loaded.value;
  const streaming = session.streaming.value;
  const warning = session.memoryWarning.value;
  const conv = session.conversation.value;
  const selected = session.modelId.value;
  const isLoadedSelection = loaded !== null && loaded.entry.id === selected;
  // Loading again only makes sense for another model or another context size.
  const upToDate = isLoadedSelection && loaded.contextSize === session.contextSize.value;
  const label = (m: (typeof models)[number]) => `${m.name} · ${m.type} · ${formatBytes(m.sizeBytes)}`;
  const selectedEntry = models.find((m) => m.id === selected);
  const statusText = loaded
    ? `${loaded.entry.name} · ${formatCount(loaded.contextSize)} ctx${loaded.chatTemplate ? "" : " · generic template"}`
    : "No model loaded";

  async function submit() {
    if (await session.send(draft.value)) draft.value = "";
    inputRef.current?.focus();
  }

  return (
    <section class="view view-chat" aria-labelledby="chat-title">
      <aside class={showHistory.value ? "chat-sidebar open" : "chat-sidebar"} aria-label="Conversations">
        <button
          type="button"
          class="button button-primary button-block"
          onClick={() => {
            session.newChat();
            showHistory.value = false;
            inputRef.current?.focus();
          }}
          disabled={streaming !== null}
          data-testid="chat-new"
        >
          <Icon name="plus" /> New chat
        </button>
        {session.summaries.value.length === 0 ? (
          <p class="muted small sidebar-empty">Your conversations are kept here.</p>
        ) : (
          <ul class="conversation-list">
            {session.summaries.value.map((s) => (
              <li key={s.id} class={s.id === conv.id ? "conversation current" : "conversation"} data-testid="conversation-item" data-id={s.id}>
                <button
                  type="button"
                  class="conversation-open"
                  aria-current={s.id === conv.id ? "true" : undefined}
                  onClick={() => {
                    void session.openConversation(s.id);
                    showHistory.value = false;
                  }}
                >
                  <span class="conversation-title" title={s.title}>
                    {s.title}
                  </span>
                  <span class="conversation-meta" title={s.modelName ?? undefined}>
                    {[s.modelName, formatWhen(s.updatedAt)].filter(Boolean).join(" · ")}
                  </span>
                </button>
                <button
                  type="button"
                  class="icon-button"
                  aria-label={`Delete conversation ${s.title}`}
                  title="Delete"
                  onClick={() => void session.deleteConversation(s.id)}
                  data-testid="conversation-delete"
                >
                  <Icon name="trash" size={16} />
                </button>
              </li>
            ))}
          </ul>
        )}
      </aside>

      <div class="chat-main">
        <h1 id="chat-title" class="visually-hidden">
          Chat
        </h1>
        <div class="chat-toolbar">
          <button
            type="button"
            class="icon-button history-toggle"
            aria-label="Conversations"
            aria-expanded={showHistory.value}
            onClick={() => (showHistory.value = !showHistory.value)}
          >
            <Icon name="history" />
          </button>
          <label class="visually-hidden" for="chat-model">
            Model
          </label>
          <select
            id="chat-model"
            class="select"
            value={selected ?? ""}
            title={selectedEntry ? label(selectedEntry) : undefined}
            disabled={streaming !== null || models.length === 0}
            onChange={(e) => {
              session.modelId.value = e.currentTarget.value;
              session.memoryWarning.value = null;
            }}
            data-testid="chat-model"
          >
            {models.length === 0 && <option value="">No runnable model</option>}
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {label(m)}
              </option>
            ))}
          </select>
          <label class="visually-hidden" for="chat-context">
            Context size
          </label>
          <select
            id="chat-context"
            class="select select-narrow"
            value={session.contextSize.value}
            disabled={streaming !== null}
            title="Context size (tokens)"
            onChange={(e) => (session.contextSize.value = Number(e.currentTarget.value))}
          >
            {session.CONTEXT_SIZES.map((n) => (
              <option key={n} value={n}>
                {formatCount(n)} ctx
              </option>
            ))}
          </select>
          <button
            type="button"
            class={isLoadedSelection ? "button" : "button button-primary"}
            disabled={!selected || session.loading.value || streaming !== null || upToDate}
            onClick={() => void session.loadModel(false)}
            data-testid="chat-load"
          >
            {session.loading.value ? "Loading…" : upToDate ? "Loaded" : isLoadedSelection ? "Reload" : "Load"}
          </button>
          {loaded && (
            <button
              type="button"
              class="button"
              disabled={session.loading.value || streaming !== null}
              onClick={() => void session.unloadModel()}
              title="Unload the model and free its memory"
              data-testid="chat-unload"
            >
              Unload
            </button>
          )}
          <span class={loaded ? "status status-on" : "status"} title={statusText} data-testid="chat-status">
            <span class="ellipsis">{statusText}</span>
          </span>
          <button
            type="button"
            class="icon-button"
            aria-label="Sampling settings"
            aria-expanded={showSettings.value}
            title="Sampling settings"
            onClick={() => (showSettings.value = !showSettings.value)}
            data-testid="chat-settings-toggle"
          >
            <Icon name="settings" />
          </button>
        </div>

        {warning && (
          <div class="banner banner-warning memory-warning" role="alert" data-testid="chat-memory-warning">
            <Icon name="alert" />
            <div class="banner-text">
              <strong>This model may not fit in memory.</strong> It needs {formatBytes(warning.neededBytes)} (
              {formatBytes(warning.modelBytes)} model + {formatBytes(warning.kvBytes)} context cache) but{" "}
              {formatBytes(warning.availableBytes)} is available. Loading it anyway can make the device slow or close
              other apps; a smaller quantization or context fits better.
              <div class="banner-actions">
                <button type="button" class="button button-small" onClick={session.dismissMemoryWarning}>
                  Cancel
                </button>
                <button
                  type="button"
                  class="button button-small button-danger"
                  onClick={() => void session.loadModel(true)}
                  data-testid="chat-load-anyway"
                >
                  Load anyway
                </button>
              </div>
            </div>
          </div>
        )}

        <ErrorBanner error={session.error.value} onDismiss={() => (session.error.value = null)} />

        <div class="system-prompt">
          <label class="field-label" for="chat-system">
            System prompt
          </label>
          <textarea
            id="chat-system"
            class="input textarea"
            rows={1}
            placeholder="Optional: how the assistant should behave"
            value={conv.system}
            onInput={(e) => session.setSystem(e.currentTarget.value)}
            data-testid="chat-system"
          />
        </div>

        {showSettings.value && (
          <div class="panel settings-panel">
            <ChatSettings value={conv.settings} onChange={session.setSettings} />
          </div>
        )}

        {models.length === 0 ? (
          <EmptyState icon="chat" title="No model to chat with">
            <p>Chat runs GGUF files. Quantize a model or add a .gguf file in the Library.</p>
            <button type="button" class="button button-primary" onClick={() => navigate("library")}>
              Go to Library
            </button>
          </EmptyState>
        ) : conv.messages.length === 0 && streaming === null ? (
          <div class="messages messages-empty">
            <EmptyState icon="sparkle" title={loaded ? `Say hello to ${loaded.entry.name}` : "Load a model to start"}>
              <p>
                {loaded
                  ? "Enter sends, Shift+Enter starts a new line, Escape stops the reply."
                  : "Choose a model above and press Load. PocketLM checks the memory first."}
              </p>
            </EmptyState>
          </div>
        ) : (
          <ChatMessages
            messages={conv.messages}
            streamingText={streaming?.text ?? null}
            canAct={loaded !== null}
            onRegenerate={() => void session.regenerate()}
            onEdit={(i, t) => void session.editAndResend(i, t)}
          />
        )}

        <p class="chat-notice muted small" role="status" data-testid="chat-notice">
          {session.notice.value ?? ""}
        </p>

        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <label class="visually-hidden" for="chat-input">
            Message
          </label>
          <textarea
            id="chat-input"
            ref={inputRef}
            class="input textarea composer-input"
            rows={2}
            placeholder={loaded ? "Message" : "Load a model to chat"}
            value={draft.value}
            disabled={!loaded}
            onInput={(e) => (draft.value = e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                e.preventDefault();
                if (!streaming) void submit();
              }
            }}
            data-testid="chat-input"
          />
          {streaming ? (
            <button type="button" class="button button-send" onClick={() => void session.stop()} data-testid="chat-stop">
              <Icon name="stop" /> Stop
            </button>
          ) : (
            <button
              type="submit"
              class="button button-primary button-send"
              disabled={!loaded || draft.value.trim() === ""}
              data-testid="chat-send"
            >
              <Icon name="send" /> Send
            </button>
          )}
        </form>
      </div>
    </section>
  );
}
