// Library: the models the app knows (added, written by the app, discovered on the machine), and the native ways to
// add one: the open dialog and files dropped on the window. Outside Tauri (a browser) those native parts are absent;
// the functions here then fail softly instead of crashing the page.

import type { OpenDialogOptions } from "@tauri-apps/plugin-dialog";
import { call, toAppError } from "./errors";
import type { ModelDetails, ModelEntry } from "./types";

export function list(): Promise<ModelEntry[]> {
  return call<ModelEntry[]>("library_list");
}

/** A .gguf file or a Hugging Face folder; rejects with `invalid_model` naming the fault. */
export function add(path: string): Promise<ModelEntry> {
  return call<ModelEntry>("library_add", { path });
}

export function remove(id: string): Promise<void> {
  return call<void>("library_remove", { id });
}

export function details(id: string): Promise<ModelDetails> {
  return call<ModelDetails>("library_details", { id });
}

/** The native open dialog for one .gguf file; null when the user closes it. */
export function pickGgufFile(): Promise<string | null> {
  return pick({ directory: false, title: "Add a GGUF model", filters: [{ name: "GGUF model", extensions: ["gguf"] }] });
}

/** The native open dialog for a Hugging Face model folder; null when the user closes it. */
export function pickModelFolder(): Promise<string | null> {
  return pick({ directory: true, title: "Add a Hugging Face model folder" });
}

async function pick(options: OpenDialogOptions): Promise<string | null> {
  try {
    const { open } = await import("@tauri-apps/plugin-dialog");
    const picked = await open({ ...options, multiple: false });
    return typeof picked === "string" ? picked : null;
  } catch (reason) {
    throw toAppError(reason);
  }
}

export type DropState = { kind: "over" } | { kind: "leave" } | { kind: "drop"; paths: string[] };

/** Calls `handler` as files are dragged over and dropped on the window. Returns an unsubscribe function; outside
 *  Tauri (no webview to listen to) it does nothing and returns a no-op. */
export async function onDragDrop(handler: (state: DropState) => void): Promise<() => void> {
  const internals = (globalThis as { __TAURI_INTERNALS__?: { metadata?: unknown } }).__TAURI_INTERNALS__;
  if (!internals?.metadata) return () => {};
  try {
    const { getCurrentWebview } = await import("@tauri-apps/api/webview");
    return await getCurrentWebview().onDragDropEvent((event) => {
      const p = event.payload;
      if (p.type === "drop") handler({ kind: "drop", paths: p.paths });
      else if (p.type === "leave") handler({ kind: "leave" });
      else handler({ kind: "over" });
    });
  } catch {
    return () => {};
  }
}
