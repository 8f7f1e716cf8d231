import { describe, expect, test, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));

import { call, isAppError, toAppError } from "./errors";

describe("toAppError", () => {
  test("keeps a backend AppError as it is", () => {
    const e = { code: "invalid_model", message: "/m/x.gguf: bad magic" };
    expect(toAppError(e)).toBe(e);
  });
  test("turns other rejections into internal errors with their message", () => {
    expect(toAppError("window not found")).toEqual({ code: "internal", message: "window not found" });
    expect(toAppError(new Error("boom"))).toEqual({ code: "internal", message: "boom" });
    expect(toAppError({ code: "teapot", message: "short and stout" })).toEqual({ code: "internal", message: "short and stout" });
    expect(toAppError(undefined).code).toBe("internal");
  });
  test("isAppError checks the code is one of the contract's", () => {
    expect(isAppError({ code: "busy", message: "" })).toBe(true);
    expect(isAppError({ code: "nope", message: "" })).toBe(false);
    expect(isAppError(null)).toBe(false);
  });
});

test("call passes camelCase args through and rejects only with AppError", async () => {
  invoke.mockResolvedValueOnce(42);
  await expect(call("job_cancel", { jobId: "j1" })).resolves.toBe(42);
  expect(invoke).toHaveBeenCalledWith("job_cancel", { jobId: "j1" });
  invoke.mockRejectedValueOnce("plain string");
  await expect(call("x")).rejects.toEqual({ code: "internal", message: "plain string" });
  invoke.mockRejectedValueOnce({ code: "not_found", message: "no such entry" });
  await expect(call("x")).rejects.toEqual({ code: "not_found", message: "no such entry" });
});
