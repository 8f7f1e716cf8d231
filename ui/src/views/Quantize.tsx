// Quantize: choose a source, see every preset with its exact output size, run one with live progress and a cancel
// button, then go on to compare or chat. The job's state lives at module level, so leaving the view while a job
// runs and coming back shows the same job.
import { signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import * as quantize from "../ipc/quantize";
import * as jobs from "../ipc/jobs";
import { toAppError } from "../ipc/errors";
import type { AppError, QuantizePlan, QuantizeProgress, QuantizeResult } from "../ipc/types";
import { navigate, readableEntries, refreshLibrary, takeHandOver, systemInfo } from "../state";
import { formatBpw, formatBytes, formatDuration, formatPercent, formatRate } from "../format";
import { EmptyState } from "../components/EmptyState";
import { ErrorBanner } from "../components/ErrorBanner";
import { Icon } from "../components/Icon";
import { ProgressBar } from "../components/ProgressBar";

type Outcome = { kind: "done"; result: QuantizeResult } | { kind: "cancelled" } | { kind: "error"; error: AppError };

const sourceId = signal<string | null>(null);
const plan = signal<QuantizePlan | null>(null);
const planError = signal<AppError | null>(null);
const preset = signal<string | null>(null);
const running = signal<{ jobId: string; preset: string; progress: QuantizeProgress | null } | null>(null);
const outcome = signal<Outcome | null>(null);

/** Forget everything (tests start from a clean view). */
export function resetQuantize(): void {
  sourceId.value = null;
  plan.value = null;
  planError.value = null;
  preset.value = null;
  running.value = null;
  outcome.value = null;
}

async function loadPlan(id: string): Promise<void> {
  // Choosing the source shown already refreshes its plan in place (no flicker, the chosen preset stays).
  if (sourceId.peek() !== id) plan.value = null;
  sourceId.value = id;
  planError.value = null;
  outcome.value = null;
  try {
    const p = await quantize.plan(id);
    if (sourceId.peek() !== id) return; // the user chose another source meanwhile
    plan.value = p;
    const usable = p.presets.filter((o) => o.error === null);
    if (!usable.some((o) => o.preset === preset.peek())) {
      preset.value = (usable.find((o) => o.recommended) ?? usable[0])?.preset ?? null;
    }
  } catch (e) {
    planError.value = toAppError(e);
  }
}

async function start(): Promise<void> {
  const id = sourceId.peek();
  const chosen = preset.peek();
  if (!id || !chosen || running.peek()) return;
  const jobId = jobs.newJobId();
  running.value = { jobId, preset: chosen, progress: null };
  outcome.value = null;
  try {
    const result = await quantize.run(jobId, id, chosen, (progress) => {
      if (running.peek()?.jobId === jobId) running.value = { jobId, preset: chosen, progress };
    });
    outcome.value = { kind: "done", result };
    void refreshLibrary();
  } catch (e) {
    const error = toAppError(e);
    outcome.value = error.code === "cancelled" ? { kind: "cancelled" } : { kind: "error", error };
  } finally {
    running.value = null;
  }
}

async function cancel(): Promise<void> {
  const job = running.peek();
  if (job) await jobs.cancel(job.jobId).catch(() => false);
}

function progressDetail(p: QuantizeProgress): string {
  const parts = [`${p.tensorName} → ${p.type}`, formatRate(p.bytesPerSecond)];
  if (p.etaSeconds !== null) parts.push(`about ${formatDuration(p.etaSeconds)} left`);
  return parts.join(" · ");
}

export function Quantize() {
  const sources = readableEntries.value;

  useEffect(() => {
    const handed = takeHandOver("quantize");
    const initial = handed ?? sourceId.peek() ?? sources[0]?.id ?? null;
    if (initial && (initial !== sourceId.peek() || !plan.peek())) void loadPlan(initial);
  }, [sources.length > 0]);

  // The outcome appears below a long preset table: bring it into view when it arrives.
  const outcomeRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (outcome.value) outcomeRef.current?.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
  }, [outcome.value]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && running.peek() && void cancel();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  if (sources.length === 0) {
    return (
      <section class="view" aria-labelledby="quantize-title">
        <header class="view-header">
          <h1 id="quantize-title">Quantize</h1>
        </header>
        <EmptyState icon="quantize" title="Nothing to quantize yet">
          <p>Add a model in the Library first — a Hugging Face folder (BF16/F16/F32 safetensors) or a GGUF file.</p>
          <button type="button" class="button button-primary" onClick={() => navigate("library")}>
            Go to Library
          </button>
        </EmptyState>
      </section>
    );
  }

  const p = plan.value;
  const job = running.value;
  const done = outcome.value;
  const chosen = p?.presets.find((o) => o.preset === preset.value) ?? null;
  const available = systemInfo.value?.availableMemory;

  return (
    <section class="view" aria-labelledby="quantize-title">
      <header class="view-header">
        <div>
          <h1 id="quantize-title">Quantize</h1>
          <p class="view-sub">Make a smaller GGUF file. Sizes below are exact, computed before anything is written.</p>
        </div>
      </header>

      <div class="field-row">
        <label class="field">
          <span class="field-label">Source model</span>
          <select
            class="select"
            value={sourceId.value ?? ""}
            disabled={job !== null}
            onChange={(e) => void loadPlan(e.currentTarget.value)}
            data-testid="quantize-source"
          >
            {sources.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} · {s.type} · {formatBytes(s.sizeBytes)}
              </option>
            ))}
          </select>
        </label>
        {p && (
          <p class="muted field-note">
            Output folder: <span class="path">{p.outputDir}</span>
          </p>
        )}
      </div>

      <ErrorBanner error={planError.value} />
      {p?.warnings.map((w) => (
        <div class="banner banner-warning" key={w}>
          <Icon name="alert" />
          <span>{w}</span>
        </div>
      ))}

      {!p && !planError.value && <p class="muted">Working out the sizes…</p>}

      {p && (
        <div class="table-wrap">
          <table class="table table-cards presets">
            <caption class="visually-hidden">Quantization presets for {p.source.name}</caption>
            <thead>
              <tr>
                <th scope="col">Preset</th>
                <th scope="col" class="num">Output size</th>
                <th scope="col" class="num">Bits/weight</th>
                <th scope="col" class="num">Change</th>
                <th scope="col">Memory</th>
                <th scope="col">Notes</th>
              </tr>
            </thead>
            <tbody>
              {p.presets.map((o) => {
                const isChosen = preset.value === o.preset;
                const disabled = o.error !== null || job !== null;
                return (
                  <tr
                    key={o.preset}
                    data-testid="preset-row"
                    data-preset={o.preset}
                    class={[isChosen && "row-selected", o.error && "row-disabled"].filter(Boolean).join(" ") || undefined}
                    onClick={() => !disabled && (preset.value = o.preset)}
                  >
                    <td data-label="Preset" class="cell-name">
                      <label class="radio">
                        <input
                          type="radio"
                          name="preset"
                          value={o.preset}
                          checked={isChosen}
                          disabled={disabled}
                          onChange={() => (preset.value = o.preset)}
                        />
                        <span class="preset-name">{o.preset}</span>
                      </label>
                      {o.recommended && <span class="badge badge-accent">Recommended</span>}
                    </td>
                    <td data-label="Output size" class="num">
                      <span data-testid="preset-size" data-bytes={o.sizeBytes}>
                        {o.error ? "—" : formatBytes(o.sizeBytes)}
                      </span>
                    </td>
                    <td data-label="Bits/weight" class="num">
                      {o.error ? "—" : formatBpw(o.bitsPerWeight)}
                    </td>
                    <td data-label="Change" class="num">
                      {o.error ? "—" : <span class="reduction">{formatPercent(o.reductionPercent)}</span>}
                    </td>
                    <td data-label="Memory">
                      {o.error ? (
                        "—"
                      ) : o.fitsMemory ? (
                        <span class="fits fits-yes">
                          <Icon name="check" size={14} /> Fits
                        </span>
                      ) : (
                        <span
                          class="fits fits-no"
                          title={available !== undefined ? `${formatBytes(available)} available` : undefined}
                        >
                          <Icon name="alert" size={14} /> Tight
                        </span>
                      )}
                    </td>
                    <td data-label="Notes" class="muted small">
                      {o.error ?? o.description}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      {p && (
        <div class="run-box" aria-live="polite">
          {job ? (
            <div class="run-progress">
              <ProgressBar
                testId="quantize-progress"
                value={job.progress?.tensor ?? 0}
                max={job.progress?.tensors ?? 0}
                attrs={{ "data-tensor": job.progress?.tensor ?? 0 }}
                label={
                  job.progress
                    ? `Tensor ${job.progress.tensor} of ${job.progress.tensors}`
                    : `Starting ${job.preset}…`
                }
                detail={job.progress ? progressDetail(job.progress) : "Reading the source…"}
              />
              <button type="button" class="button" onClick={() => void cancel()} data-testid="quantize-cancel">
                <Icon name="stop" /> Cancel
              </button>
            </div>
          ) : (
            <div class="run-start">
              <p class="muted">
                {chosen
                  ? `${chosen.preset}: ${formatBytes(chosen.sizeBytes)} (${formatPercent(chosen.reductionPercent)} vs ${formatBytes(p.source.sizeBytes)})`
                  : "Choose a preset."}
              </p>
              <button
                type="button"
                class="button button-primary"
                disabled={!chosen}
                onClick={() => void start()}
                data-testid="quantize-start"
              >
                <Icon name="quantize" /> Quantize{chosen ? ` to ${chosen.preset}` : ""}
              </button>
            </div>
          )}
        </div>
      )}

      <div ref={outcomeRef} class="outcome">
      {done?.kind === "done" && (
        <div class="result" data-testid="quantize-result" data-bytes={done.result.sizeBytes}>
          <div class="result-head">
            <Icon name="check" />
            <h2>{done.result.entry.name} is ready</h2>
          </div>
          <dl class="facts">
            <div>
              <dt>Size</dt>
              <dd>{formatBytes(done.result.sizeBytes)}</dd>
            </div>
            <div>
              <dt>Predicted</dt>
              <dd>
                {formatBytes(done.result.predictedBytes)}
                {done.result.predictedBytes === done.result.sizeBytes && <span class="muted small"> exact</span>}
              </dd>
            </div>
            <div>
              <dt>Change</dt>
              <dd>{formatPercent(done.result.reductionPercent)}</dd>
            </div>
            <div>
              <dt>Time</dt>
              <dd>{formatDuration(done.result.seconds)}</dd>
            </div>
          </dl>
          <div class="toolbar">
            <button type="button" class="button button-primary" onClick={() => navigate("compare", done.result.entry.id)}>
              <Icon name="compare" /> Compare
            </button>
            {done.result.entry.runnable && (
              <button type="button" class="button" onClick={() => navigate("chat", done.result.entry.id)}>
                <Icon name="chat" /> Chat with it
              </button>
            )}
          </div>
        </div>
      )}
      {done?.kind === "cancelled" && (
        <div class="banner banner-calm" role="status" data-testid="quantize-cancelled">
          Cancelled — no file was written.
        </div>
      )}
      {done?.kind === "error" && <ErrorBanner error={done.error} onDismiss={() => (outcome.value = null)} />}
      </div>
    </section>
  );
}
