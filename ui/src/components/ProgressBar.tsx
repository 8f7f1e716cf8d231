// A determinate progress bar: a native <progress> (so assistive tech and tests read value/max), a label, the
// percentage and a detail line. The text sits in an aria-live region, announced politely as it changes.
export interface ProgressBarProps {
  value: number;
  max: number;
  label: string;
  detail?: string;
  testId?: string;
  /** Extra attributes for the <progress> element (data-*). */
  attrs?: Record<string, string | number>;
}

export function percentOf(value: number, max: number): number {
  if (!(max > 0)) return 0;
  return Math.min(100, Math.max(0, (value / max) * 100));
}

export function ProgressBar({ value, max, label, detail, testId, attrs }: ProgressBarProps) {
  const percent = Math.floor(percentOf(value, max));
  return (
    <div class="progress">
      <div class="progress-head" aria-live="polite">
        <span class="progress-label">{label}</span>
        <span class="progress-percent">{percent}%</span>
      </div>
      <progress data-testid={testId} value={value} max={max > 0 ? max : 1} aria-label={label} {...attrs} />
      {detail !== undefined && <div class="progress-detail">{detail}</div>}
    </div>
  );
}
