// Compare: every version of one model (the original, then each quantized file) as a size chart with the reduction
// and perplexity beside each bar, where the bytes go in each version, and the same numbers as a table.
import { signal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import * as compareIpc from "../ipc/compare";
import * as jobs from "../ipc/jobs";
import { toAppError } from "../ipc/errors";
import type { AppError, Comparison, PerplexityProgress, Version } from "../ipc/types";
import { navigate, readableEntries, takeHandOver } from "../state";
import { formatBpw, formatBytes, formatDuration, formatPercent } from "../format";
import { EmptyState } from "../components/EmptyState";
import { ErrorBanner } from "../components/ErrorBanner";
import { ProgressBar } from "../components/ProgressBar";
import { SizeChart } from "../components/SizeChart";
import { StackedBar } from "../components/StackedBar";
import { GROUP_ORDER } from "./ModelDetails";

const sourceId = signal<string | null>(null);
const comparison = signal<Comparison | null>(null);
const error = signal<AppError | null>(null);
const breakdown = signal<"group" | "type">("group");
const pplJobs = signal<Record<string, { jobId: string; progress: PerplexityProgress | null }>>({});
const pplErrors = signal<Record<string, AppError>>({});

export function resetCompare(): void {
  sourceId.value = null;
  comparison.value = null;
  error.value = null;
  breakdown.value = "group";
  pplJobs.value = {};
  pplErrors.value = {};
}

async function load(id: string): Promise<void> {
  sourceId.value = id;
  error.value = null;
  try {
    const c = await compareIpc.compare(id);
    if (sourceId.peek() === id) comparison.value = c;
  } catch (e) {
    comparison.value = null;
    error.value = toAppError(e);
  }
}

function setJob(id: string, job: { jobId: string; progress: PerplexityProgress | null } | null) {
  const next = { ...pplJobs.peek() };
  if (job) next[id] = job;
  else delete next[id];
  pplJobs.value = next;
}

async function measure(version: Version): Promise<void> {
  const id = version.entry.id;
  if (pplJobs.peek()[id]) return;
  const jobId = jobs.newJobId();
  setJob(id, { jobId, progress: null });
  const { [id]: _, ...rest } = pplErrors.peek();
  pplErrors.value = rest;
  try {
    const result = await compareIpc.perplexity(jobId, id, (progress) => setJob(id, { jobId, progress }));
    const c = comparison.peek();
    if (c) {
      comparison.value = {
        ...c,
        versions: c.versions.map((v) => (v.entry.id === id ? { ...v, perplexity: result } : v)),
      };
    }
  } catch (e) {
    const err = toAppError(e);
    if (err.code !== "cancelled") pplErrors.value = { ...pplErrors.peek(), [id]: err };
  } finally {
    setJob(id, null);
  }
}

function bitsPerWeight(v: Version): number {
  const params = v.byGroup.reduce((s, g) => s + g.parameters, 0);
  const bytes = v.byGroup.reduce((s, g) => s + g.bytes, 0);
  return params > 0 ? (bytes * 8) / params : NaN;
}

function pplText(v: Version): string | undefined {
  return v.perplexity ? `ppl ${v.perplexity.perplexity.toFixed(2)} ± ${v.perplexity.stderr.toFixed(2)}` : undefined;
}

export function Compare() {
  const sources = readableEntries.value;

  useEffect(() => {
    const handed = takeHandOver("compare");
    const initial = handed ?? sourceId.peek() ?? sources[0]?.id ?? null;
    if (initial && (initial !== sourceId.peek() || !comparison.peek())) void load(initial);
  }, [sources.length > 0]);

  if (sources.length === 0) {
    return (
      <section class="view" aria-labelledby="compare-title">
        <header class="view-header">
          <h1 id="compare-title">Compare</h1>
        </header>
        <EmptyState icon="compare" title="Nothing to compare yet">
          <p>Add a model, then quantize it: every version of a model appears here side by side.</p>
          <button type="button" class="button button-primary" onClick={() => navigate("library")}>
            Go to Library
          </button>
        </EmptyState>
      </section>
    );
  }

  const c = comparison.value;
  const versions = c?.versions ?? [];
  const typeOrder = [...new Set(versions.flatMap((v) => [...v.byType].sort((a, b) => b.bytes - a.bytes).map((t) => t.type)))];

  return (
    <section class="view" aria-labelledby="compare-title">
      <header class="view-header">
        <div>
          <h1 id="compare-title">Compare</h1>
          <p class="view-sub">{c ? `${c.family}: ${versions.length} versions` : "Sizes and quality of every version of a model."}</p>
        </div>
      </header>

      <label class="field">
        <span class="field-label">Model</span>
        <select
          class="select"
          value={sourceId.value ?? ""}
          onChange={(e) => void load(e.currentTarget.value)}
          data-testid="compare-source"
        >
          {sources.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name} · {s.type}
            </option>
          ))}
        </select>
      </label>

      <ErrorBanner error={error.value} />

      {c && versions.length === 1 && (
        <div class="banner banner-calm">
          Only one version so far.{" "}
          <button type="button" class="link-button" onClick={() => navigate("quantize", versions[0].entry.id)}>
            Quantize it
          </button>{" "}
          to see how much smaller it gets.
        </div>
      )}

      {c && (
        <>
          <section class="panel" aria-labelledby="sizes-title">
            <h2 id="sizes-title">Size on disk</h2>
            <SizeChart
              title="Size on disk"
              rows={versions.map((v, i) => ({
                key: v.entry.id,
                label: v.entry.type,
                sublabel: v.entry.name,
                bytes: v.entry.sizeBytes,
                note: i === 0 ? "original" : formatPercent(v.reductionPercent, 2),
                extra: pplText(v),
                highlight: i === 0,
              }))}
            />
          </section>

          <section class="panel" aria-labelledby="breakdown-title">
            <div class="panel-header">
              <h2 id="breakdown-title">Where the bytes go</h2>
              <div class="segmented" role="group" aria-label="Break down by">
                <button
                  type="button"
                  aria-pressed={breakdown.value === "group"}
                  onClick={() => (breakdown.value = "group")}
                  data-testid="breakdown-group"
                >
                  Tensor group
                </button>
                <button
                  type="button"
                  aria-pressed={breakdown.value === "type"}
                  onClick={() => (breakdown.value = "type")}
                  data-testid="breakdown-type"
                >
                  Type
                </button>
              </div>
            </div>
            <div class="breakdown-list">
              {versions.map((v) => (
                <div class="breakdown-row" key={v.entry.id}>
                  <div class="breakdown-label">
                    <span class="type-tag">{v.entry.type}</span>
                    <span class="muted small">{formatBytes(v.entry.sizeBytes)}</span>
                  </div>
                  {breakdown.value === "group" ? (
                    <StackedBar
                      label={`${v.entry.type} by tensor group`}
                      palette={GROUP_ORDER}
                      legend={false}
                      segments={[...v.byGroup]
                        .sort((a, b) => GROUP_ORDER.indexOf(a.group) - GROUP_ORDER.indexOf(b.group))
                        .map((g) => ({ key: g.group, bytes: g.bytes }))}
                    />
                  ) : (
                    <StackedBar
                      label={`${v.entry.type} by type`}
                      palette={typeOrder}
                      legend={false}
                      segments={[...v.byType]
                        .sort((a, b) => typeOrder.indexOf(a.type) - typeOrder.indexOf(b.type))
                        .map((t) => ({ key: t.type, bytes: t.bytes }))}
                    />
                  )}
                </div>
              ))}
            </div>
            <ul class="legend">
              {(breakdown.value === "group"
                ? GROUP_ORDER.filter((g) => versions.some((v) => v.byGroup.some((x) => x.group === g)))
                : typeOrder
              ).map((key, i) => (
                <li key={key}>
                  <span
                    class="swatch"
                    style={{ background: `var(--series-${(breakdown.value === "group" ? GROUP_ORDER.indexOf(key) : i) % 8})` }}
                  />
                  <span class="legend-key">{key}</span>
                </li>
              ))}
            </ul>
          </section>

          <section class="panel" aria-labelledby="table-title">
            <h2 id="table-title">Versions</h2>
            <div class="table-wrap">
              <table class="table table-cards">
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col" class="num">Size</th>
                    <th scope="col" class="num">Change</th>
                    <th scope="col" class="num">Bits/weight</th>
                    <th scope="col">Perplexity</th>
                  </tr>
                </thead>
                <tbody>
                  {versions.map((v, i) => {
                    const job = pplJobs.value[v.entry.id];
                    const err = pplErrors.value[v.entry.id];
                    return (
                      <tr key={v.entry.id} data-testid="compare-version" data-id={v.entry.id} data-bytes={v.entry.sizeBytes}>
                        <td data-label="Version" class="cell-name">
                          <span class="type-tag">{v.entry.type}</span> <span>{v.entry.name}</span>
                        </td>
                        <td data-label="Size" class="num">
                          {formatBytes(v.entry.sizeBytes)}
                        </td>
                        <td data-label="Change" class="num">
                          {i === 0 ? "original" : formatPercent(v.reductionPercent, 2)}
                        </td>
                        <td data-label="Bits/weight" class="num">
                          {formatBpw(bitsPerWeight(v))}
                        </td>
                        <td data-label="Perplexity" class="cell-ppl">
                          {job ? (
                            <div class="ppl-running">
                              <ProgressBar
                                testId="ppl-progress"
                                value={job.progress?.chunk ?? 0}
                                max={job.progress?.chunks ?? 0}
                                label={job.progress ? `Chunk ${job.progress.chunk} of ${job.progress.chunks}` : "Starting…"}
                                detail={
                                  job.progress
                                    ? `ppl so far ${job.progress.perplexity.toFixed(2)} · ${formatDuration(job.progress.elapsedSeconds)}`
                                    : undefined
                                }
                              />
                              <button
                                type="button"
                                class="button button-small"
                                onClick={() => void jobs.cancel(job.jobId).catch(() => false)}
                                data-testid="ppl-cancel"
                              >
                                Cancel
                              </button>
                            </div>
                          ) : (
                            <div class="ppl-idle">
                              {v.perplexity ? (
                                <span data-testid="ppl-value" title={`${v.perplexity.tokens} tokens, context ${v.perplexity.contextSize}, ${formatDuration(v.perplexity.seconds)}`}>
                                  {v.perplexity.perplexity.toFixed(2)}{" "}
                                  <span class="muted small">± {v.perplexity.stderr.toFixed(2)}</span>
                                </span>
                              ) : (
                                <span class="muted">not measured</span>
                              )}
                              {(v.entry.runnable || (v.entry.format === "hf" && !v.entry.error)) && (
                                <button
                                  type="button"
                                  class="button button-small"
                                  onClick={() => void measure(v)}
                                  data-testid="ppl-run"
                                >
                                  {v.perplexity ? "Measure again" : "Measure perplexity"}
                                </button>
                              )}
                            </div>
                          )}
                          {err && <ErrorBanner error={err} />}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            <p class="muted small">
              Perplexity: how surprised the model is by a fixed text; lower is better. Compare versions of one model only.
            </p>
          </section>
        </>
      )}
    </section>
  );
}
