// Where a library entry came from, as a small badge.
import type { ModelOrigin } from "../ipc/types";

const LABELS: Record<ModelOrigin, string> = {
  added: "Added",
  app: "Made here",
  demo: "Demo",
  "hf-cache": "HF cache",
  ollama: "Ollama",
  "lm-studio": "LM Studio",
};

export function originLabel(origin: ModelOrigin): string {
  return LABELS[origin] ?? origin;
}

export function OriginBadge({ origin }: { origin: ModelOrigin }) {
  return <span class={`badge badge-${origin}`}>{originLabel(origin)}</span>;
}
