// A horizontal bar chart of sizes: one row per item, the bar's length proportional to the largest item, with the
// size and a note (the reduction, a perplexity) written beside it. Labels are HTML so they stay readable at any
// width; each bar is a small SVG. The chart is a picture of a table shown elsewhere, so it is one labelled image.
import { formatBytes } from "../format";

export interface SizeChartRow {
  key: string;
  label: string;
  sublabel?: string;
  bytes: number;
  note?: string;
  extra?: string;
  highlight?: boolean;
}

/** Each bar's length as a fraction of the largest (0 when every size is 0). */
export function barFractions(rows: { bytes: number }[]): number[] {
  const max = Math.max(0, ...rows.map((r) => r.bytes));
  return rows.map((r) => (max > 0 ? r.bytes / max : 0));
}

export function SizeChart({ rows, title }: { rows: SizeChartRow[]; title: string }) {
  const fractions = barFractions(rows);
  const summary = rows.map((r) => `${r.label} ${formatBytes(r.bytes)}${r.note ? ` ${r.note}` : ""}`).join(", ");
  return (
    <figure class="size-chart" role="img" aria-label={`${title}: ${summary}`}>
      {rows.map((row, i) => (
        <div class={row.highlight ? "bar-row bar-row-highlight" : "bar-row"} key={row.key} data-testid="chart-bar">
          <div class="bar-label">
            <span class="bar-name">{row.label}</span>
            {row.sublabel && <span class="bar-sub">{row.sublabel}</span>}
          </div>
          <svg class="bar-svg" width="100%" height="22" aria-hidden="true" focusable="false">
            <rect class="bar-track" x="0" y="3" width="100%" height="16" rx="4" />
            <rect
              class={i === 0 ? "bar-fill bar-fill-first" : "bar-fill"}
              x="0"
              y="3"
              width={`${(fractions[i] * 100).toFixed(2)}%`}
              height="16"
              rx="4"
              data-fraction={fractions[i].toFixed(4)}
            />
          </svg>
          <div class="bar-value">
            <span class="bar-bytes">{formatBytes(row.bytes)}</span>
            {row.note && <span class="bar-note">{row.note}</span>}
            {row.extra && <span class="bar-extra">{row.extra}</span>}
          </div>
        </div>
      ))}
    </figure>
  );
}
