import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { entry } from "./testData";

const ipc = vi.hoisted(() => ({ list: vi.fn(), add: vi.fn(), remove: vi.fn(), details: vi.fn() }));
vi.mock("../ipc/library", () => ({ ...ipc, pickGgufFile: vi.fn(), pickModelFolder: vi.fn() }));
vi.mock("../ipc/system", () => ({ systemInfo: vi.fn() }));

import { Library } from "./Library";
import { entries, libraryLoaded, refreshLibrary } from "../state";

beforeEach(() => {
  entries.value = [];
  libraryLoaded.value = false;
});
afterEach(cleanup);

test("an empty library says what to do", async () => {
  ipc.list.mockResolvedValue([]);
  await refreshLibrary();
  render(<Library />);
  const empty = screen.getByTestId("empty-state");
  expect(empty.textContent).toContain("No models yet");
  expect(empty.textContent).toMatch(/Add a \.gguf file or a Hugging Face model folder/);
  expect(screen.queryAllByTestId("model-row")).toHaveLength(0);
});

test("add by path lists the new entry; an invalid one shows the backend's message", async () => {
  const added = entry({ id: "/m/a.gguf", name: "a", origin: "added" });
  ipc.list.mockResolvedValueOnce([]).mockResolvedValueOnce([added]);
  ipc.add.mockResolvedValueOnce(added).mockRejectedValueOnce({ code: "invalid_model", message: "/m/bad.gguf: bad magic" });
  await refreshLibrary();
  render(<Library />);
  fireEvent.input(screen.getByTestId("add-path-input"), { target: { value: " /m/a.gguf " } });
  fireEvent.click(screen.getByTestId("add-path-submit"));
  const row = await screen.findByTestId("model-row");
  expect(ipc.add).toHaveBeenCalledWith("/m/a.gguf");
  expect(row.getAttribute("data-id")).toBe("/m/a.gguf");
  expect(row.getAttribute("data-name")).toBe("a");
  expect(row.textContent).toContain("101 MiB");
  expect(row.textContent).toContain("Added");

  fireEvent.input(screen.getByTestId("add-path-input"), { target: { value: "/m/bad.gguf" } });
  fireEvent.click(screen.getByTestId("add-path-submit"));
  await waitFor(() => expect(screen.getByTestId("error-banner").textContent).toBe("/m/bad.gguf: bad magic"));
});

test("an entry that could not be read shows its error in the row", async () => {
  ipc.list.mockResolvedValue([entry({ id: "/m/x.gguf", name: "x", error: "/m/x.gguf: truncated at byte 12" })]);
  await refreshLibrary();
  render(<Library />);
  expect(screen.getByTestId("model-row").textContent).toContain("/m/x.gguf: truncated at byte 12");
});
