// One bar split into parts (bytes by tensor group or by type), with a legend naming each part, its size and share.
// Colours come from a fixed palette in styles.css (--series-0 … --series-7) so the same key keeps its colour
// across bars when the caller passes the same key order.
import { formatBytes } from "../format";

export interface Segment {
  key: string;
  bytes: number;
}

export function shares(segments: Segment[]): number[] {
  const total = segments.reduce((s, x) => s + x.bytes, 0);
  return segments.map((s) => (total > 0 ? (s.bytes / total) * 100 : 0));
}

export function colourIndex(key: string, palette: string[]): number {
  const i = palette.indexOf(key);
  return (i < 0 ? palette.length : i) % 8;
}

export function StackedBar({
  segments,
  palette,
  label,
  legend = true,
}: {
  segments: Segment[];
  /** Keys in colour order, shared by every bar drawn together. */
  palette: string[];
  label: string;
  legend?: boolean;
}) {
  const pct = shares(segments);
  let x = 0;
  return (
    <div class="stacked">
      <svg class="stacked-svg" width="100%" height="18" role="img" aria-label={label}>
        {segments.map((s, i) => {
          const rect = (
            <rect
              key={s.key}
              x={`${x}%`}
              y="0"
              width={`${pct[i]}%`}
              height="18"
              style={{ fill: `var(--series-${colourIndex(s.key, palette)})` }}
            >
              <title>{`${s.key}: ${formatBytes(s.bytes)} (${pct[i].toFixed(1)}%)`}</title>
            </rect>
          );
          x += pct[i];
          return rect;
        })}
      </svg>
      {legend && (
        <ul class="legend">
          {segments.map((s, i) => (
            <li key={s.key}>
              <span class="swatch" style={{ background: `var(--series-${colourIndex(s.key, palette)})` }} />
              <span class="legend-key">{s.key}</span>
              <span class="legend-value">
                {formatBytes(s.bytes)} · {pct[i].toFixed(1)}%
              </span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
