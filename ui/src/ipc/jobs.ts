// Jobs: long-running commands (quantize, perplexity, generation) carry a job id the UI makes up, so the UI can
// cancel them while they run.
import { call } from "./errors";

export function newJobId(): string {
  return crypto.randomUUID();
}

/** True if a job with that id was running (and is now told to stop). */
export function cancel(jobId: string): Promise<boolean> {
  return call<boolean>("job_cancel", { jobId });
}
