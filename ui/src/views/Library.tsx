// Library: every model the app knows, ways to add one (dialog, path, drag and drop — the last is wired in app.tsx),
// a details panel per entry and removal with a confirmation.
import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import * as library from "../ipc/library";
import { toAppError } from "../ipc/errors";
import type { AppError, ModelEntry } from "../ipc/types";
import { entries, libraryError, libraryLoaded, refreshLibrary } from "../state";
import { formatBytes, formatParams } from "../format";
import { EmptyState } from "../components/EmptyState";
import { ErrorBanner } from "../components/ErrorBanner";
import { Icon } from "../components/Icon";
import { OriginBadge } from "../components/OriginBadge";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ModelDetailsPanel } from "./ModelDetails";

/** Adds a path to the library and refreshes the list; the error (if any) is returned for the caller to show. */
export async function addPath(path: string): Promise<AppError | null> {
  try {
    await library.add(path);
    await refreshLibrary();
    return null;
  } catch (e) {
    return toAppError(e);
  }
}

export function Library() {
  const path = useSignal("");
  const busy = useSignal(false);
  const error = useSignal<AppError | null>(null);
  const selected = useSignal<string | null>(null);
  const confirming = useSignal<ModelEntry | null>(null);
  const detailsRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (selected.value) detailsRef.current?.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
  }, [selected.value]);

  async function add(p: string) {
    const trimmed = p.trim();
    if (!trimmed) {
      error.value = { code: "invalid_model", message: "Type or paste the path of a .gguf file or a model folder." };
      return;
    }
    busy.value = true;
    error.value = await addPath(trimmed);
    if (!error.value) path.value = "";
    busy.value = false;
  }

  async function pick(kind: "file" | "folder") {
    try {
      const p = kind === "file" ? await library.pickGgufFile() : await library.pickModelFolder();
      if (p) await add(p);
    } catch (e) {
      error.value = toAppError(e);
    }
  }

  async function remove(entry: ModelEntry) {
    confirming.value = null;
    try {
      await library.remove(entry.id);
      if (selected.value === entry.id) selected.value = null;
      await refreshLibrary();
    } catch (e) {
      error.value = toAppError(e);
    }
  }

  const list = entries.value;
  const total = list.reduce((s, e) => s + e.sizeBytes, 0);

  return (
    <section class="view" aria-labelledby="library-title">
      <header class="view-header">
        <div>
          <h1 id="library-title">Library</h1>
          <p class="view-sub">
            {list.length === 1 ? "1 model" : `${list.length} models`}
            {list.length > 0 && ` · ${formatBytes(total)} on disk`}
          </p>
        </div>
        <div class="toolbar">
          <button type="button" class="button" onClick={() => pick("file")}>
            <Icon name="file" /> Add GGUF file…
          </button>
          <button type="button" class="button" onClick={() => pick("folder")}>
            <Icon name="folder" /> Add Hugging Face folder…
          </button>
        </div>
      </header>

      <form
        class="add-path"
        onSubmit={(e) => {
          e.preventDefault();
          void add(path.value);
        }}
      >
        <label class="visually-hidden" for="add-path">
          Path to a .gguf file or a Hugging Face model folder
        </label>
        <input
          id="add-path"
          class="input"
          type="text"
          spellcheck={false}
          autocomplete="off"
          placeholder="Paste a path: /models/SmolLM2-135M-Instruct or …/model.gguf"
          value={path.value}
          onInput={(e) => (path.value = e.currentTarget.value)}
          data-testid="add-path-input"
        />
        <button type="submit" class="button button-primary" disabled={busy.value} data-testid="add-path-submit">
          <Icon name="plus" /> {busy.value ? "Adding…" : "Add by path"}
        </button>
      </form>

      <ErrorBanner error={error.value ?? libraryError.value} onDismiss={() => (error.value = libraryError.value = null)} />

      {libraryLoaded.value && list.length === 0 ? (
        <EmptyState icon="library" title="No models yet">
          <p>
            Add a <strong>.gguf</strong> file or a <strong>Hugging Face model folder</strong> (with config.json and
            safetensors): use the buttons above, paste its path, or drop it on this window.
          </p>
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table class="table table-cards">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Architecture</th>
                <th scope="col" class="num">Parameters</th>
                <th scope="col">Type</th>
                <th scope="col" class="num">Size</th>
                <th scope="col">Origin</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((entry) => (
                <tr
                  key={entry.id}
                  data-testid="model-row"
                  data-id={entry.id}
                  data-name={entry.name}
                  class={selected.value === entry.id ? "row-selected" : entry.error ? "row-error" : undefined}
                >
                  <td data-label="Name" class="cell-name">
                    <button
                      type="button"
                      class="link-button"
                      title={entry.name}
                      aria-expanded={selected.value === entry.id}
                      onClick={() => (selected.value = selected.value === entry.id ? null : entry.id)}
                    >
                      {entry.name}
                    </button>
                    <span class="path" title={entry.path}>
                      {entry.path}
                    </span>
                    {entry.error && (
                      <span class="entry-error">
                        <Icon name="alert" size={14} /> {entry.error}
                      </span>
                    )}
                  </td>
                  <td data-label="Architecture">{entry.architecture ?? "—"}</td>
                  <td data-label="Parameters" class="num">
                    {formatParams(entry.parameters)}
                  </td>
                  <td data-label="Type">
                    <span class="type-tag">{entry.type}</span>
                  </td>
                  <td data-label="Size" class="num">
                    {formatBytes(entry.sizeBytes)}
                  </td>
                  <td data-label="Origin">
                    <OriginBadge origin={entry.origin} />
                  </td>
                  <td class="cell-actions">
                    <button
                      type="button"
                      class="icon-button"
                      aria-label={`Remove ${entry.name}`}
                      title="Remove"
                      data-testid="model-remove"
                      onClick={() => (confirming.value = entry)}
                    >
                      <Icon name="trash" />
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      {selected.value && (
        <div ref={detailsRef}>
          <ModelDetailsPanel id={selected.value} onClose={() => (selected.value = null)} />
        </div>
      )}

      {confirming.value && (
        <ConfirmDialog
          title={`Remove ${confirming.value.name}?`}
          confirmLabel="Remove"
          danger
          onCancel={() => (confirming.value = null)}
          onConfirm={() => void remove(confirming.value!)}
        >
          {confirming.value.origin === "app" ? (
            <p>This file was made by PocketLM; removing it deletes it from disk ({formatBytes(confirming.value.sizeBytes)}).</p>
          ) : (
            <p>The library forgets it; the file on disk stays where it is.</p>
          )}
        </ConfirmDialog>
      )}
    </section>
  );
}
