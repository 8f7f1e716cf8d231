import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import type { QuantizeProgress, QuantizeResult } from "../ipc/types";
import { entry, preset } from "./testData";

const ipc = vi.hoisted(() => ({
  plan: vi.fn(),
  run: vi.fn(),
  cancel: vi.fn(),
  list: vi.fn(),
}));
vi.mock("../ipc/quantize", () => ({ plan: ipc.plan, run: ipc.run }));
vi.mock("../ipc/jobs", () => ({ cancel: ipc.cancel, newJobId: () => "job-1" }));
vi.mock("../ipc/library", () => ({ list: ipc.list }));
vi.mock("../ipc/system", () => ({ systemInfo: vi.fn() }));

import { Quantize, resetQuantize } from "./Quantize";
import { entries } from "../state";

const SOURCE = entry({ id: "/m/smol", name: "SmolLM2", type: "BF16", sizeBytes: 269_060_552, format: "hf", runnable: false });

beforeEach(() => {
  resetQuantize();
  entries.value = [SOURCE];
  ipc.list.mockResolvedValue([SOURCE]);
  ipc.plan.mockResolvedValue({
    source: SOURCE,
    outputDir: "/out",
    warnings: [],
    presets: [
      preset("Q8_0", 144_810_944),
      preset("Q4_K_M", 105_454_016),
      preset("Q2_K", 0, { error: "Q2_K needs rows that are a multiple of 256" }),
    ],
  });
});
afterEach(cleanup);

function progress(tensor: number, tensors: number): QuantizeProgress {
  return {
    tensor,
    tensors,
    tensorName: `blk.${tensor}.ffn_up.weight`,
    type: "Q4_K",
    bytesDone: tensor * 1000,
    bytesTotal: tensors * 1000,
    bytesPerSecond: 52_300_000,
    etaSeconds: 72,
    elapsedSeconds: 3,
  };
}

test("lists every preset with its exact size, Q4_K_M recommended and chosen", async () => {
  render(<Quantize />);
  await screen.findAllByTestId("preset-row");
  expect(ipc.plan).toHaveBeenCalledWith("/m/smol");
  const rows = screen.getAllByTestId("preset-row");
  expect(rows.map((r) => r.getAttribute("data-preset"))).toEqual(["Q8_0", "Q4_K_M", "Q2_K"]);
  const q4 = rows[1];
  const size = q4.querySelector('[data-testid="preset-size"]')!;
  expect(size.textContent).toBe("101 MiB");
  expect(size.getAttribute("data-bytes")).toBe("105454016");
  expect(q4.textContent).toContain("Recommended");
  expect(q4.textContent).toContain("\u221260.8%");
  expect((q4.querySelector("input") as HTMLInputElement).checked).toBe(true);
  expect(rows[2].textContent).toContain("multiple of 256");
  expect((rows[2].querySelector("input") as HTMLInputElement).disabled).toBe(true);
  expect(screen.getByTestId("quantize-start").textContent).toContain("Quantize to Q4_K_M");
});

test("progress events move the bar; success shows the result", async () => {
  let send!: (p: QuantizeProgress) => void;
  let finish!: (r: QuantizeResult) => void;
  ipc.run.mockImplementation((_job: string, _id: string, _preset: string, onProgress: (p: QuantizeProgress) => void) => {
    send = onProgress;
    return new Promise<QuantizeResult>((ok) => (finish = ok));
  });
  render(<Quantize />);
  fireEvent.click((await screen.findAllByTestId("preset-row"))[0]); // choose Q8_0
  fireEvent.click(screen.getByTestId("quantize-start"));
  expect(ipc.run).toHaveBeenCalledWith("job-1", "/m/smol", "Q8_0", expect.any(Function));

  act(() => send(progress(3, 12)));
  const bar = (await screen.findByTestId("quantize-progress")) as HTMLProgressElement;
  expect(bar.getAttribute("value")).toBe("3");
  expect(bar.getAttribute("max")).toBe("12");
  expect(bar.getAttribute("data-tensor")).toBe("3");
  expect(screen.getByText("Tensor 3 of 12")).toBeTruthy();
  expect(screen.getByText("25%")).toBeTruthy();
  expect(document.body.textContent).toContain("blk.3.ffn_up.weight → Q4_K · 52.3 MB/s · about 1 min 12 s left");

  act(() => send(progress(9, 12)));
  expect(screen.getByTestId("quantize-progress").getAttribute("data-tensor")).toBe("9");
  expect(screen.getByText("75%")).toBeTruthy();

  const made = entry({ id: "/out/SmolLM2-Q8_0.gguf", name: "SmolLM2-Q8_0", type: "Q8_0", sizeBytes: 144_810_944 });
  await act(async () => finish({ entry: made, sizeBytes: 144_810_944, predictedBytes: 144_810_944, seconds: 72.4, reductionPercent: -46.2 }));
  const result = await screen.findByTestId("quantize-result");
  expect(result.getAttribute("data-bytes")).toBe("144810944");
  expect(result.textContent).toContain("138 MiB");
  expect(result.textContent).toContain("1 min 12 s");
  expect(result.textContent).toContain("\u221246.2%");
  expect(screen.queryByTestId("quantize-progress")).toBeNull();
  expect(screen.getByText("Chat with it")).toBeTruthy();
});

test("Cancel calls job_cancel with the run's job id and shows the calm note", async () => {
  let fail!: (e: unknown) => void;
  ipc.run.mockImplementation(() => new Promise((_ok, no) => (fail = no)));
  ipc.cancel.mockImplementation(async () => {
    fail({ code: "cancelled", message: "cancelled" });
    return true;
  });
  render(<Quantize />);
  await screen.findAllByTestId("preset-row");
  fireEvent.click(screen.getByTestId("quantize-start"));
  fireEvent.click(await screen.findByTestId("quantize-cancel"));
  expect(ipc.cancel).toHaveBeenCalledWith("job-1");
  const note = await screen.findByTestId("quantize-cancelled");
  expect(note.textContent).toBe("Cancelled — no file was written.");
  expect(screen.queryByTestId("error-banner")).toBeNull();
  expect(screen.queryByTestId("quantize-result")).toBeNull();
});

test("a failed run shows the error's message", async () => {
  ipc.run.mockRejectedValue({ code: "io", message: "/out: no space left on device" });
  render(<Quantize />);
  await screen.findAllByTestId("preset-row");
  fireEvent.click(screen.getByTestId("quantize-start"));
  await waitFor(() => expect(screen.getByTestId("error-banner").textContent).toBe("/out: no space left on device"));
});
