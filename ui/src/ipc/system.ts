// System: the device the app runs on (memory, CPU kernels, where files go).
import { call } from "./errors";
import type { SystemInfo } from "./types";

export function systemInfo(): Promise<SystemInfo> {
  return call<SystemInfo>("system_info");
}
