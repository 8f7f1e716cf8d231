// Shared fixtures for the view tests (not shipped: only test files import it).
import type { ModelEntry, PresetOption } from "../ipc/types";

export function entry(p: Partial<ModelEntry> & Pick<ModelEntry, "id" | "name">): ModelEntry {
  return {
    path: p.id,
    format: "gguf",
    origin: "added",
    architecture: "llama",
    parameters: 134_515_008,
    type: "Q4_K_M",
    sizeBytes: 105_454_016,
    family: p.name,
    derivedFrom: null,
    runnable: true,
    error: null,
    ...p,
  };
}

export function preset(name: string, sizeBytes: number, extra: Partial<PresetOption> = {}): PresetOption {
  return {
    preset: name,
    description: `${name} description`,
    sizeBytes,
    bitsPerWeight: (sizeBytes * 8) / 134_515_008,
    reductionPercent: (sizeBytes / 269_060_552 - 1) * 100,
    fitsMemory: true,
    recommended: name === "Q4_K_M",
    error: null,
    ...extra,
  };
}
