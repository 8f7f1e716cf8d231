// How a command is called and how it fails. Every rejection from the backend is an AppError `{code, message}`;
// anything else that can reject (a plugin missing outside Tauri, a thrown Error, a bare string) is turned into one
// here, so views handle exactly one error shape.

import { invoke, type InvokeArgs } from "@tauri-apps/api/core";
import type { AppError, ErrorCode } from "./types";

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "invalid_model",
  "not_found",
  "unsupported",
  "cancelled",
  "busy",
  "no_model_loaded",
  "prompt_too_long",
  "insufficient_memory",
  "io",
  "internal",
]);

export function isAppError(value: unknown): value is AppError {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === "string" && CODES.has(v.code) && typeof v.message === "string";
}

/** Any rejection as an AppError; unknown shapes become `internal` with the best message we can find. */
export function toAppError(reason: unknown): AppError {
  if (isAppError(reason)) return reason;
  if (typeof reason === "string") return { code: "internal", message: reason };
  if (reason instanceof Error) return { code: "internal", message: reason.message };
  if (typeof reason === "object" && reason !== null && typeof (reason as { message?: unknown }).message === "string") {
    return { code: "internal", message: (reason as { message: string }).message };
  }
  return { code: "internal", message: "Something went wrong in the app (no details were given)." };
}

/** Invoke a backend command; rejects only with an AppError. The IPC modules call this, views never do. */
export async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (reason) {
    throw toAppError(reason);
  }
}

export function isCancelled(error: AppError): boolean {
  return error.code === "cancelled";
}
