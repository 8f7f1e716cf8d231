import { afterEach, describe, expect, test, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { ProgressBar, percentOf } from "./ProgressBar";
import { SizeChart, barFractions } from "./SizeChart";
import { StackedBar, shares } from "./StackedBar";
import { ErrorBanner } from "./ErrorBanner";

afterEach(cleanup);

describe("ProgressBar", () => {
  test("a native progress element with value, max, label and percentage", () => {
    render(<ProgressBar testId="p" value={7} max={12} label="Tensor 7 of 12" detail="52.3 MB/s" attrs={{ "data-tensor": 7 }} />);
    const p = screen.getByTestId("p") as HTMLProgressElement;
    expect(p.tagName).toBe("PROGRESS");
    expect(p.getAttribute("value")).toBe("7");
    expect(p.getAttribute("max")).toBe("12");
    expect(p.getAttribute("data-tensor")).toBe("7");
    expect(screen.getByText("Tensor 7 of 12")).toBeTruthy();
    expect(screen.getByText("58%")).toBeTruthy(); // floor(7/12)
    expect(screen.getByText("52.3 MB/s")).toBeTruthy();
    expect(document.querySelector("[aria-live=polite]")!.textContent).toContain("Tensor 7 of 12");
  });
  test("percentages are clamped and safe with no total", () => {
    expect(percentOf(3, 0)).toBe(0);
    expect(percentOf(13, 12)).toBe(100);
    render(<ProgressBar value={0} max={0} label="Starting" />);
    expect(screen.getByText("0%")).toBeTruthy();
  });
});

describe("SizeChart", () => {
  test("bars are proportional to the largest and carry size and note labels", () => {
    render(
      <SizeChart
        title="Size"
        rows={[
          { key: "a", label: "BF16", bytes: 6_425_499_648, note: "original" },
          { key: "b", label: "Q4_K_M", bytes: 2_012_000_000, note: "\u221268.69%" },
        ]}
      />,
    );
    const bars = screen.getAllByTestId("chart-bar");
    expect(bars).toHaveLength(2);
    expect(bars[0].textContent).toContain("5.98 GiB");
    expect(bars[1].textContent).toContain("1.87 GiB");
    expect(bars[1].textContent).toContain("\u221268.69%");
    const fills = [...document.querySelectorAll(".bar-fill")].map((r) => r.getAttribute("width"));
    expect(fills).toEqual(["100.00%", "31.31%"]);
    expect(screen.getByRole("img").getAttribute("aria-label")).toBe("Size: BF16 5.98 GiB original, Q4_K_M 1.87 GiB \u221268.69%");
  });
  test("all-zero sizes draw empty bars, not NaN", () => {
    expect(barFractions([{ bytes: 0 }, { bytes: 0 }])).toEqual([0, 0]);
  });
});

test("StackedBar splits by share and names each part", () => {
  expect(shares([{ key: "a", bytes: 1 }, { key: "b", bytes: 3 }])).toEqual([25, 75]);
  render(<StackedBar label="by type" palette={["Q4_K", "Q6_K"]} segments={[{ key: "Q4_K", bytes: 3 * 2 ** 20 }, { key: "Q6_K", bytes: 2 ** 20 }]} />);
  const rects = document.querySelectorAll("rect");
  expect([...rects].map((r) => [r.getAttribute("x"), r.getAttribute("width")])).toEqual([
    ["0%", "75%"],
    ["75%", "25%"],
  ]);
  expect(screen.getByText("3.00 MiB · 75.0%")).toBeTruthy();
});

describe("ErrorBanner", () => {
  test("shows the AppError's message as an alert, and nothing without an error", () => {
    const onDismiss = vi.fn();
    const { rerender } = render(<ErrorBanner error={{ code: "io", message: "/m/a.gguf: permission denied" }} onDismiss={onDismiss} />);
    const banner = screen.getByTestId("error-banner");
    expect(banner.getAttribute("role")).toBe("alert");
    expect(banner.textContent).toBe("/m/a.gguf: permission denied");
    fireEvent.click(screen.getByLabelText("Dismiss"));
    expect(onDismiss).toHaveBeenCalledOnce();
    rerender(<ErrorBanner error={null} />);
    expect(screen.queryByTestId("error-banner")).toBeNull();
  });
});
