// The details of one library entry: headline figures, where its bytes go (by tensor group and by type, as a bar and
// a table) and the file's metadata.
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import * as library from "../ipc/library";
import { toAppError } from "../ipc/errors";
import type { AppError, ModelDetails, Tally } from "../ipc/types";
import { formatBpw, formatBytes, formatCount, formatParams } from "../format";
import { ErrorBanner } from "../components/ErrorBanner";
import { Icon } from "../components/Icon";
import { StackedBar } from "../components/StackedBar";

export const GROUP_ORDER = ["embeddings", "attention", "feed-forward", "output", "norms", "other"];

function TallyTable({ caption, rows, total }: { caption: string; rows: (Tally & { name: string })[]; total: number }) {
  // A phone may be narrower than five numeric columns: the table scrolls in its own box, never the page.
  return (
    <div class="table-scroll">
      <table class="table table-compact">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{caption}</th>
            <th scope="col" class="num">Tensors</th>
            <th scope="col" class="num">Parameters</th>
            <th scope="col" class="num">Size</th>
            <th scope="col" class="num">Share</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name}>
              <th scope="row">{r.name}</th>
              <td class="num">{formatCount(r.tensors)}</td>
              <td class="num">{formatParams(r.parameters)}</td>
              <td class="num">{formatBytes(r.bytes)}</td>
              <td class="num">{total > 0 ? `${((r.bytes / total) * 100).toFixed(1)}%` : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ModelDetailsPanel({ id, onClose }: { id: string; onClose: () => void }) {
  const details = useSignal<ModelDetails | null>(null);
  const error = useSignal<AppError | null>(null);

  useEffect(() => {
    let live = true;
    details.value = null;
    error.value = null;
    library
      .details(id)
      .then((d) => live && (details.value = d))
      .catch((e) => live && (error.value = toAppError(e)));
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && !document.querySelector(".overlay") && onClose();
    window.addEventListener("keydown", onKey);
    return () => {
      live = false;
      window.removeEventListener("keydown", onKey);
    };
  }, [id]);

  const d = details.value;
  const groups = d ? [...d.byGroup].sort((a, b) => GROUP_ORDER.indexOf(a.group) - GROUP_ORDER.indexOf(b.group)) : [];
  const types = d ? [...d.byType].sort((a, b) => b.bytes - a.bytes) : [];

  return (
    <section class="panel details" data-testid="model-details" aria-labelledby="details-title">
      <header class="panel-header">
        <h2 id="details-title" title={d?.entry.name}>
          {d?.entry.name ?? "Details"}
        </h2>
        <button type="button" class="icon-button" aria-label="Close details" title="Close (Esc)" onClick={onClose}>
          <Icon name="close" />
        </button>
      </header>
      <ErrorBanner error={error.value} />
      {!d && !error.value && <p class="muted">Reading the file…</p>}
      {d && (
        <>
          {d.entry.error && (
            <div class="banner banner-warning">
              <Icon name="alert" />
              <span>{d.entry.error}</span>
            </div>
          )}
          <dl class="facts">
            <div>
              <dt>Parameters</dt>
              <dd>{formatParams(d.total.parameters)}</dd>
            </div>
            <div>
              <dt>Size</dt>
              <dd>{formatBytes(d.entry.sizeBytes)}</dd>
            </div>
            <div>
              <dt>Bits per weight</dt>
              <dd>{formatBpw(d.bitsPerWeight)}</dd>
            </div>
            <div>
              <dt>Tensors</dt>
              <dd>{formatCount(d.total.tensors)}</dd>
            </div>
            <div>
              <dt>Layers</dt>
              <dd>{d.layers ?? "—"}</dd>
            </div>
            <div>
              <dt>Context</dt>
              <dd>{d.contextLength !== null ? `${formatCount(d.contextLength)} tokens` : "—"}</dd>
            </div>
          </dl>

          <div class="breakdowns">
            <div>
              <h3>By tensor group</h3>
              <StackedBar
                label="Bytes by tensor group"
                palette={GROUP_ORDER}
                segments={groups.map((g) => ({ key: g.group, bytes: g.bytes }))}
                legend={false}
              />
              <TallyTable caption="Group" rows={groups.map((g) => ({ ...g, name: g.group }))} total={d.total.bytes} />
            </div>
            <div>
              <h3>By type</h3>
              <StackedBar
                label="Bytes by tensor type"
                palette={types.map((t) => t.type)}
                segments={types.map((t) => ({ key: t.type, bytes: t.bytes }))}
                legend={false}
              />
              <TallyTable caption="Type" rows={types.map((t) => ({ ...t, name: t.type }))} total={d.total.bytes} />
            </div>
          </div>

          <details class="metadata">
            <summary>Metadata ({d.metadata.length} keys)</summary>
            <table class="table table-compact table-kv">
              <tbody>
                {d.metadata.map((m) => (
                  <tr key={m.key}>
                    <th scope="row">{m.key}</th>
                    <td>{m.value}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
          <p class="path muted">{d.entry.path}</p>
        </>
      )}
    </section>
  );
}
