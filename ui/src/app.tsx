// The shell: a header with the device, the navigation (a sidebar on wide screens, a bottom tab bar on phones),
// the current view, and files dropped anywhere on the window going to the library.
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import * as library from "./ipc/library";
import type { AppError } from "./ipc/types";
import { refreshLibrary, refreshSystem, systemInfo, view, type ViewName } from "./state";
import { formatBytes } from "./format";
import { Icon, type IconName } from "./components/Icon";
import { ErrorBanner } from "./components/ErrorBanner";
import { Library, addPath } from "./views/Library";
import { Quantize } from "./views/Quantize";
import { Compare } from "./views/Compare";
import { Chat } from "./views/Chat";

const NAV: { name: ViewName; label: string; icon: IconName }[] = [
  { name: "library", label: "Library", icon: "library" },
  { name: "quantize", label: "Quantize", icon: "quantize" },
  { name: "compare", label: "Compare", icon: "compare" },
  { name: "chat", label: "Chat", icon: "chat" },
];

function SystemLine() {
  const s = systemInfo.value;
  if (!s) return null;
  return (
    <p class="system-line" data-testid="system-info" title={s.cpu}>
      <Icon name="chip" size={14} />
      <span>
        {formatBytes(s.totalMemory)} memory · {formatBytes(s.availableMemory)} free
        <span class="system-extra">
          {" "}
          · {s.kernels.toUpperCase()} · {s.threads} threads
        </span>
      </span>
    </p>
  );
}

export function App() {
  const dropping = useSignal(false);
  const dropError = useSignal<AppError | null>(null);

  useEffect(() => {
    void refreshSystem();
    void refreshLibrary();
    let unlisten: (() => void) | null = null;
    let gone = false;
    void library
      .onDragDrop(async (state) => {
        if (state.kind === "over") dropping.value = true;
        else if (state.kind === "leave") dropping.value = false;
        else {
          dropping.value = false;
          view.value = "library";
          for (const path of state.paths) {
            const err = await addPath(path);
            if (err) dropError.value = err;
          }
        }
      })
      .then((u) => (gone ? u() : (unlisten = u)));
    return () => {
      gone = true;
      unlisten?.();
    };
  }, []);

  const current = view.value;
  return (
    <div class="shell">
      <header class="topbar">
        <div class="brand">
          <span class="brand-mark" aria-hidden="true" />
          <span class="brand-name">PocketLM</span>
        </div>
        <SystemLine />
      </header>
      <nav class="nav" aria-label="Main">
        {NAV.map((n) => (
          <button
            type="button"
            key={n.name}
            class="nav-item"
            aria-current={current === n.name ? "page" : undefined}
            onClick={() => (view.value = n.name)}
            data-testid={`nav-${n.name}`}
          >
            <Icon name={n.icon} size={20} />
            <span>{n.label}</span>
          </button>
        ))}
      </nav>
      <main class={current === "chat" ? "content content-chat" : "content"}>
        {dropError.value && (
          <div class="content-banner">
            <ErrorBanner error={dropError.value} onDismiss={() => (dropError.value = null)} />
          </div>
        )}
        {current === "library" && <Library />}
        {current === "quantize" && <Quantize />}
        {current === "compare" && <Compare />}
        {current === "chat" && <Chat />}
      </main>
      {dropping.value && (
        <div class="drop-overlay" aria-hidden="true">
          <div class="drop-card">
            <Icon name="plus" size={28} />
            <p>Drop a .gguf file or a model folder to add it</p>
          </div>
        </div>
      )}
    </div>
  );
}
