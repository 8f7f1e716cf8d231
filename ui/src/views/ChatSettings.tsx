// Sampling settings for the chat, as a small form. Each field keeps a valid number; empty seed means random.
import type { SamplingSettings } from "../ipc/types";
import { DEFAULT_SETTINGS } from "./chatSession";

interface FieldSpec {
  key: Exclude<keyof SamplingSettings, "seed">;
  label: string;
  min: number;
  max: number;
  step: number;
  hint: string;
}

const FIELDS: FieldSpec[] = [
  { key: "temperature", label: "Temperature", min: 0, max: 2, step: 0.05, hint: "0 = always the likeliest token" },
  { key: "topP", label: "Top-p", min: 0, max: 1, step: 0.01, hint: "1 = off" },
  { key: "topK", label: "Top-k", min: 0, max: 1000, step: 1, hint: "0 = off" },
  { key: "minP", label: "Min-p", min: 0, max: 1, step: 0.01, hint: "0 = off" },
  { key: "repeatPenalty", label: "Repeat penalty", min: 1, max: 2, step: 0.05, hint: "1 = off" },
  { key: "maxTokens", label: "Max tokens", min: 1, max: 32768, step: 1, hint: "reply length limit" },
];

export function ChatSettings({ value, onChange }: { value: SamplingSettings; onChange: (s: SamplingSettings) => void }) {
  return (
    <div class="settings-grid" data-testid="chat-settings">
      {FIELDS.map((f) => (
        <label class="field" key={f.key}>
          <span class="field-label">{f.label}</span>
          <input
            class="input"
            type="number"
            min={f.min}
            max={f.max}
            step={f.step}
            value={value[f.key]}
            data-testid={`chat-setting-${f.key}`}
            onChange={(e) => {
              const n = Number(e.currentTarget.value);
              if (e.currentTarget.value === "" || !Number.isFinite(n)) return;
              const clamped = Math.min(f.max, Math.max(f.min, n));
              onChange({ ...value, [f.key]: f.step === 1 ? Math.round(clamped) : clamped });
            }}
          />
          <span class="field-hint">{f.hint}</span>
        </label>
      ))}
      <label class="field">
        <span class="field-label">Seed</span>
        <input
          class="input"
          type="number"
          min={0}
          step={1}
          placeholder="random"
          value={value.seed ?? ""}
          data-testid="chat-setting-seed"
          onChange={(e) => {
            const raw = e.currentTarget.value.trim();
            const n = Number(raw);
            onChange({ ...value, seed: raw === "" || !Number.isFinite(n) ? null : Math.max(0, Math.round(n)) });
          }}
        />
        <span class="field-hint">empty = random</span>
      </label>
      <div class="field field-reset">
        <button type="button" class="button button-small" onClick={() => onChange({ ...DEFAULT_SETTINGS })}>
          Reset to defaults
        </button>
      </div>
    </div>
  );
}
