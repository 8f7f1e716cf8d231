// App-wide state shared by the views: which view is shown, the library (every view picks models from it), the
// device, and a hand-over when one view sends the user to another with a model chosen ("Compare", "Chat with it").

import { computed, signal } from "@preact/signals";
import * as library from "./ipc/library";
import * as system from "./ipc/system";
import { toAppError } from "./ipc/errors";
import type { AppError, ModelEntry, SystemInfo } from "./ipc/types";

export type ViewName = "library" | "quantize" | "compare" | "chat";

export const view = signal<ViewName>("library");
export const entries = signal<ModelEntry[]>([]);
export const libraryLoaded = signal(false);
export const libraryError = signal<AppError | null>(null);
export const systemInfo = signal<SystemInfo | null>(null);

/** The entry a view should start with, set when another view sends the user there. */
export const handOver = signal<{ view: ViewName; id: string } | null>(null);

export const readableEntries = computed(() => entries.value.filter((e) => e.error === null));
export const runnableEntries = computed(() => entries.value.filter((e) => e.runnable && e.error === null));

export function navigate(to: ViewName, id?: string): void {
  handOver.value = id ? { view: to, id } : null;
  view.value = to;
}

/** Takes the hand-over meant for `target`, once. */
export function takeHandOver(target: ViewName): string | null {
  const h = handOver.peek();
  if (!h || h.view !== target) return null;
  handOver.value = null;
  return h.id;
}

export async function refreshLibrary(): Promise<void> {
  try {
    entries.value = await library.list();
    libraryError.value = null;
  } catch (e) {
    libraryError.value = toAppError(e);
  } finally {
    libraryLoaded.value = true;
  }
}

export async function refreshSystem(): Promise<void> {
  try {
    systemInfo.value = await system.systemInfo();
  } catch {
    systemInfo.value = null; // the header simply shows nothing
  }
}

export function entryById(id: string | null): ModelEntry | undefined {
  return id === null ? undefined : entries.value.find((e) => e.id === id);
}
