import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import type { ChatEvent, GenerationStats } from "../ipc/types";
import { entry } from "./testData";

const ipc = vi.hoisted(() => ({
  memoryCheck: vi.fn(),
  load: vi.fn(),
  unload: vi.fn(),
  generate: vi.fn(),
  cancel: vi.fn(),
  list: vi.fn(),
  get: vi.fn(),
  save: vi.fn(),
  remove: vi.fn(),
}));
vi.mock("../ipc/chat", () => ({ memoryCheck: ipc.memoryCheck, load: ipc.load, unload: ipc.unload, generate: ipc.generate }));
vi.mock("../ipc/jobs", () => ({ cancel: ipc.cancel, newJobId: () => "gen-1" }));
vi.mock("../ipc/conversations", () => ({ list: ipc.list, get: ipc.get, save: ipc.save, remove: ipc.remove }));
vi.mock("../ipc/library", () => ({ list: vi.fn() }));
vi.mock("../ipc/system", () => ({ systemInfo: vi.fn() }));

import { Chat } from "./Chat";
import { entries } from "../state";
import { resetChat } from "./chatSession";

const MODEL = entry({ id: "/m/smol-q4.gguf", name: "smol-q4" });
const memory = { modelBytes: 105e6, kvBytes: 40e6, neededBytes: 150e6, availableBytes: 8e9, fits: true };

function stats(stopReason: GenerationStats["stopReason"], generated: number): GenerationStats {
  return {
    promptTokens: 20,
    reusedTokens: 0,
    promptTokensPerSecond: 400,
    generatedTokens: generated,
    tokensPerSecond: 52.3,
    timeToFirstTokenMs: 120,
    stopReason,
    contextUsed: 20 + generated,
    contextSize: 2048,
    shifted: false,
  };
}

beforeEach(() => {
  resetChat();
  entries.value = [MODEL, entry({ id: "/m/folder", name: "folder", runnable: false, format: "hf" })];
  ipc.list.mockResolvedValue([]);
  ipc.save.mockImplementation(async (c) => ({ id: c.id, title: c.title, modelId: c.modelId, modelName: c.modelName, messages: c.messages.length, updatedAt: c.updatedAt }));
  ipc.memoryCheck.mockResolvedValue(memory);
  ipc.load.mockResolvedValue({ entry: MODEL, contextSize: 2048, memory, chatTemplate: true });
});
afterEach(cleanup);

async function loadModel() {
  render(<Chat />);
  const select = screen.getByTestId("chat-model") as HTMLSelectElement;
  expect([...select.options].map((o) => o.value)).toEqual(["/m/smol-q4.gguf"]); // runnable only
  fireEvent.click(screen.getByTestId("chat-load"));
  await waitFor(() => expect((screen.getByTestId("chat-input") as HTMLTextAreaElement).disabled).toBe(false));
  expect(ipc.memoryCheck).toHaveBeenCalledWith("/m/smol-q4.gguf", 2048);
  expect(ipc.load).toHaveBeenCalledWith("/m/smol-q4.gguf", 2048, false);
}

test("streamed tokens are appended to the reply; done shows the figures and saves", async () => {
  let emit!: (e: ChatEvent) => void;
  let finish!: (s: GenerationStats) => void;
  ipc.generate.mockImplementation((_j, _s, _m, _set, onEvent) => {
    emit = onEvent;
    return new Promise((ok) => (finish = ok));
  });
  await loadModel();
  const input = screen.getByTestId("chat-input");
  fireEvent.input(input, { target: { value: "Capital of France?" } });
  fireEvent.keyDown(input, { key: "Enter" });
  await waitFor(() => expect(ipc.generate).toHaveBeenCalled());
  const [jobId, system, messages, settings] = ipc.generate.mock.calls[0];
  expect(jobId).toBe("gen-1");
  expect(system).toBe("");
  expect(messages).toEqual([{ role: "user", content: "Capital of France?" }]);
  expect(settings).toEqual({ temperature: 0.7, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, maxTokens: 512, seed: null });
  expect((input as HTMLTextAreaElement).value).toBe("");

  const reply = () => screen.getAllByTestId("chat-message").filter((m) => m.dataset.role === "assistant").pop()!;
  act(() => emit({ kind: "token", text: "The" }));
  expect(reply().querySelector(".message-body")!.textContent).toBe("The");
  act(() => emit({ kind: "token", text: " capital" }));
  act(() => emit({ kind: "token", text: " is Paris." }));
  expect(reply().querySelector(".message-body")!.textContent).toBe("The capital is Paris.");
  expect(screen.getByTestId("chat-stop")).toBeTruthy();

  const s = stats("eos", 3);
  act(() => emit({ kind: "done", stats: s }));
  await act(async () => finish(s));
  expect(screen.getByTestId("chat-stats").textContent).toBe("52.3 tok/s · first token 120 ms · context 23 / 2,048");
  expect(screen.getByTestId("chat-send")).toBeTruthy();
  await waitFor(() => expect(ipc.save).toHaveBeenCalledTimes(1));
  const saved = ipc.save.mock.calls[0][0];
  expect(saved.title).toBe("Capital of France?");
  expect(saved.modelId).toBe("/m/smol-q4.gguf");
  expect(saved.messages).toEqual([
    { role: "user", content: "Capital of France?" },
    { role: "assistant", content: "The capital is Paris.", stats: s },
  ]);
});

test("Stop calls job_cancel with the generation's job id and keeps the partial reply", async () => {
  let emit!: (e: ChatEvent) => void;
  let finish!: (s: GenerationStats) => void;
  ipc.generate.mockImplementation((_j, _s, _m, _set, onEvent) => {
    emit = onEvent;
    return new Promise((ok) => (finish = ok));
  });
  ipc.cancel.mockImplementation(async () => {
    finish(stats("cancelled", 2));
    return true;
  });
  await loadModel();
  fireEvent.input(screen.getByTestId("chat-input"), { target: { value: "Tell me a long story" } });
  fireEvent.click(screen.getByTestId("chat-send"));
  await waitFor(() => expect(ipc.generate).toHaveBeenCalled());
  act(() => emit({ kind: "token", text: "Once" }));
  act(() => emit({ kind: "token", text: " upon" }));
  fireEvent.click(screen.getByTestId("chat-stop"));
  expect(ipc.cancel).toHaveBeenCalledWith("gen-1");
  await screen.findByTestId("chat-send");
  const assistant = screen.getAllByTestId("chat-message").filter((m) => m.dataset.role === "assistant");
  expect(assistant).toHaveLength(1);
  expect(assistant[0].querySelector(".message-body")!.textContent).toBe("Once upon");
  expect(screen.getByTestId("chat-stats").textContent).toContain("stopped");
  expect(screen.getByTestId("chat-regenerate")).toBeTruthy();
});

test("a model that does not fit asks first, and Load anyway forces it", async () => {
  ipc.memoryCheck.mockResolvedValue({ ...memory, neededBytes: 9 * 2 ** 30, availableBytes: 4 * 2 ** 30, fits: false });
  render(<Chat />);
  fireEvent.click(screen.getByTestId("chat-load"));
  const warning = await screen.findByTestId("chat-memory-warning");
  expect(warning.textContent).toContain("needs 9.00 GiB");
  expect(warning.textContent).toContain("4.00 GiB is available");
  expect(ipc.load).not.toHaveBeenCalled();
  fireEvent.click(screen.getByTestId("chat-load-anyway"));
  await waitFor(() => expect(ipc.load).toHaveBeenCalledWith("/m/smol-q4.gguf", 2048, true));
  await waitFor(() => expect(screen.queryByTestId("chat-memory-warning")).toBeNull());
});

test("editing a user message drops what followed and answers the edit", async () => {
  ipc.generate.mockImplementation(async (_j, _s, msgs, _set, onEvent) => {
    onEvent({ kind: "token", text: `re: ${msgs[msgs.length - 1].content}` });
    return stats("eos", 1);
  });
  await loadModel();
  for (const text of ["first", "second"]) {
    fireEvent.input(screen.getByTestId("chat-input"), { target: { value: text } });
    fireEvent.click(screen.getByTestId("chat-send"));
    await waitFor(() => expect(screen.getAllByTestId("chat-stats")).toHaveLength(text === "first" ? 1 : 2));
  }
  fireEvent.click(screen.getAllByTestId("chat-edit")[0]);
  fireEvent.input(screen.getByTestId("chat-edit-input"), { target: { value: "first, edited" } });
  fireEvent.click(screen.getByTestId("chat-edit-send"));
  await waitFor(() => expect(ipc.generate).toHaveBeenCalledTimes(3));
  expect(ipc.generate.mock.calls[2][2]).toEqual([{ role: "user", content: "first, edited" }]);
  await waitFor(() =>
    expect(screen.getAllByTestId("chat-message").map((m) => m.querySelector(".message-body")!.textContent)).toEqual([
      "first, edited",
      "re: first, edited",
    ]),
  );
});

test("Unload frees the model: chat_unload is called, the input is disabled and the status says no model", async () => {
  ipc.unload.mockResolvedValue(undefined);
  await loadModel();
  expect(screen.getByTestId("chat-status").textContent).toBe("smol-q4 · 2,048 ctx");
  expect(screen.getByTestId("chat-status").getAttribute("title")).toBe("smol-q4 · 2,048 ctx");
  expect(screen.getByTestId("chat-load").textContent).toBe("Loaded");
  fireEvent.click(screen.getByTestId("chat-unload"));
  await waitFor(() => expect((screen.getByTestId("chat-input") as HTMLTextAreaElement).disabled).toBe(true));
  expect(ipc.unload).toHaveBeenCalledTimes(1);
  expect(screen.getByTestId("chat-status").textContent).toBe("No model loaded");
  expect(screen.getByTestId("chat-status").classList.contains("status-on")).toBe(false);
  expect(screen.queryByTestId("chat-unload")).toBeNull();
  expect(screen.getByTestId("chat-load").textContent).toBe("Load");
  expect((screen.getByTestId("chat-send") as HTMLButtonElement).disabled).toBe(true);
});

test("a failed unload keeps the model and shows the error", async () => {
  ipc.unload.mockRejectedValue({ code: "internal", message: "the engine is busy" });
  await loadModel();
  fireEvent.click(screen.getByTestId("chat-unload"));
  await screen.findByTestId("error-banner");
  expect(screen.getByTestId("error-banner").textContent).toContain("the engine is busy");
  expect((screen.getByTestId("chat-input") as HTMLTextAreaElement).disabled).toBe(false);
  expect(screen.getByTestId("chat-status").textContent).toBe("smol-q4 · 2,048 ctx");
});
