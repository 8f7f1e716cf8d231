// Human-readable numbers for every label in the UI: sizes in binary units ("1.87 GiB"), rates in decimal units
// ("52.3 MB/s", as file managers show throughput), signed percentages with a real minus sign ("−68.7%"),
// durations ("1 min 12 s") and parameter counts ("135M"). One place, so every view says the same thing.

const MINUS = "\u2212";

/** Three significant figures, never more than two decimals: 1.87, 12.3, 101. */
function sig3(x: number): string {
  const a = Math.abs(x);
  const decimals = a < 10 ? 2 : a < 100 ? 1 : 0;
  return x.toFixed(decimals);
}

const BINARY_UNITS = ["KiB", "MiB", "GiB", "TiB"];

/** Bytes in binary units: 512 B, 1.50 KiB, 101 MiB, 1.87 GiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "—";
  const sign = bytes < 0 ? MINUS : "";
  let v = Math.abs(bytes);
  if (v < 1024) return `${sign}${Math.round(v)} B`;
  let unit = -1;
  while (v >= 1024 && unit < BINARY_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  // 1023.9 MiB would print as "1024 MiB": carry to the next unit instead.
  if (Number(sig3(v)) >= 1024 && unit < BINARY_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${sign}${sig3(v)} ${BINARY_UNITS[unit]}`;
}

const DECIMAL_RATE_UNITS = ["B/s", "kB/s", "MB/s", "GB/s"];

/** Throughput in decimal units: 850 B/s, 52.3 MB/s, 1.20 GB/s. */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return "—";
  let v = bytesPerSecond;
  let unit = 0;
  while (v >= 1000 && unit < DECIMAL_RATE_UNITS.length - 1) {
    v /= 1000;
    unit++;
  }
  if (unit === 0) return `${Math.round(v)} B/s`;
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${DECIMAL_RATE_UNITS[unit]}`;
}

/** A signed percentage with a real minus sign: "−68.7%", "+2.5%", "0.0%". */
export function formatPercent(percent: number, decimals = 1): string {
  if (!Number.isFinite(percent)) return "—";
  const text = Math.abs(percent).toFixed(decimals);
  if (Number(text) === 0) return `${text}%`;
  return `${percent < 0 ? MINUS : "+"}${text}%`;
}

/** A duration: "0.4 s", "12 s", "1 min 12 s", "2 h 5 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 10) {
    const t = seconds.toFixed(1);
    if (t !== "10.0") return `${t} s`;
  }
  const total = Math.round(seconds);
  if (total < 60) return `${total} s`;
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  if (hours > 0) return minutes > 0 ? `${hours} h ${minutes} min` : `${hours} h`;
  return secs > 0 ? `${minutes} min ${secs} s` : `${minutes} min`;
}

/** Milliseconds for short latencies: "85 ms", "1.20 s". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A parameter count as model names write it: "135M", "1.24B", "8B", "12K". */
export function formatParams(count: number | null): string {
  if (count === null || !Number.isFinite(count)) return "—";
  const steps: [number, string][] = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [scale, suffix] of steps) {
    if (count >= scale) {
      const v = count / scale;
      // Three significant figures, trailing zeros dropped: 1.24B, 8B, 135M.
      const text = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
      return `${Number(text)}${suffix}`;
    }
  }
  return String(count);
}

/** Bits per weight: "4.89". */
export function formatBpw(bits: number): string {
  return Number.isFinite(bits) ? bits.toFixed(2) : "—";
}

/** Tokens per second: "52.3 tok/s". */
export function formatTokensPerSecond(rate: number): string {
  if (!Number.isFinite(rate)) return "—";
  return `${rate.toFixed(rate < 100 ? 1 : 0)} tok/s`;
}

/** A whole number with thousands separators: "12,345". */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—";
}

/** An RFC 3339 time as "14:05" today, else "3 Mar" (or "3 Mar 2023" in another year). */
export function formatWhen(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const sameDay = d.toDateString() === now.toDateString();
  if (sameDay) return d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  const opts: Intl.DateTimeFormatOptions = { day: "numeric", month: "short" };
  if (d.getFullYear() !== now.getFullYear()) opts.year = "numeric";
  return d.toLocaleDateString("en-GB", opts);
}
