// The built UI in real headless Chromium, backed by the fake backend (fake-backend.ts). Each test opens a fresh
// page; screenshots of every view go to target/ui-screenshots/.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launch, openApp, screenshot, serveDist } from "./harness";

let browser: Browser;
let server: { url: string; close: () => Promise<void> };
const pages: Page[] = [];

beforeAll(async () => {
  server = await serveDist();
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(o: Parameters<typeof openApp>[2] = {}) {
  const r = await openApp(browser, server.url, o);
  pages.push(r.page);
  return r;
}

const calls = (page: Page, cmd: string) =>
  page.evaluate((c) => window.__fake.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);

describe("library", () => {
  test("an empty library says what to do", async () => {
    const { page, errors } = await open({ fake: { empty: true } });
    await expect(page.getByTestId("empty-state").textContent()).resolves.toMatch(/Add a .gguf file/);
    expect(await page.getByTestId("model-row").count()).toBe(0);
    await screenshot(page, "library-empty");
    expect(errors).toEqual([]);
  });

  test("lists every entry with readable sizes, origins and errors", async () => {
    const { page, errors } = await open();
    const rows = page.getByTestId("model-row");
    await rows.first().waitFor();
    expect(await rows.count()).toBe(5);
    const smol = page.locator('[data-testid="model-row"][data-name="SmolLM2-135M-Instruct"]');
    expect(await smol.getAttribute("data-id")).toBe("/home/user/models/SmolLM2-135M-Instruct");
    const text = await smol.innerText();
    expect(text).toContain("257 MiB"); // 269,060,552 bytes
    expect(text).toContain("135M");
    expect(text).toContain("Demo");
    expect(text).toContain("llama");
    expect(await page.locator('[data-testid="model-row"][data-name="llama3.2:1b"]').innerText()).toContain("Ollama");
    expect(await page.locator('[data-testid="model-row"][data-name="broken"]').innerText()).toMatch(/ends at byte 1,204,224/);
    expect(await page.getByRole("heading", { name: "Library" }).isVisible()).toBe(true);
    await expect(page.getByTestId("system-info").innerText()).resolves.toMatch(/16.0 GiB memory · 9.30 GiB free · AVX2/);

    await smol.getByRole("button", { name: "SmolLM2-135M-Instruct", exact: true }).click();
    const details = page.getByTestId("model-details");
    await details.getByRole("rowheader", { name: "feed-forward" }).waitFor();
    expect(await details.innerText()).toMatch(/By tensor group[\s\S]*feed-forward\t90\t71.3M\t136 MiB\t53.0%[\s\S]*By type/);
    await screenshot(page, "library-details");
    expect(errors).toEqual([]);
  });

  test("add by path lists the new model; a bad path shows the error; remove asks first", async () => {
    const { page, errors } = await open();
    await page.getByTestId("model-row").first().waitFor();
    await page.getByTestId("add-path-input").fill("/data/tiny-Q4_K_M.gguf");
    await page.getByTestId("add-path-submit").click();
    const row = page.locator('[data-testid="model-row"][data-id="/data/tiny-Q4_K_M.gguf"]');
    await row.waitFor();
    expect(await row.getAttribute("data-name")).toBe("tiny-Q4_K_M");
    expect(await page.getByTestId("add-path-input").inputValue()).toBe("");
    expect(await calls(page, "library_add")).toEqual([{ path: "/data/tiny-Q4_K_M.gguf" }]);

    await page.getByTestId("add-path-input").fill("/tmp/corrupt.gguf");
    await page.keyboard.press("Enter");
    const banner = page.getByTestId("error-banner");
    await banner.waitFor();
    expect(await banner.getAttribute("role")).toBe("alert");
    expect(await banner.innerText()).toBe("/tmp/corrupt.gguf: not a GGUF file (bad version 4294967295)");
    await screenshot(page, "library-error");

    await row.getByTestId("model-remove").click();
    await page.getByTestId("confirm-dialog").waitFor();
    await page.keyboard.press("Escape"); // Escape keeps it
    await page.getByTestId("confirm-dialog").waitFor({ state: "detached" }); // the key event lands after press() returns
    expect(await row.count()).toBe(1);
    await row.getByTestId("model-remove").click();
    await page.getByTestId("confirm-ok").click();
    await row.waitFor({ state: "detached" });
    expect(await calls(page, "library_remove")).toEqual([{ id: "/data/tiny-Q4_K_M.gguf" }]);
    expect(errors).toEqual([]);
  });
});

describe("quantize", () => {
  test("presets show exact sizes; a run shows progress and the result", async () => {
    const { page, errors } = await open({ fake: { tensors: 12, tensorDelayMs: 60 } });
    await page.getByTestId("nav-quantize").click();
    await page.getByTestId("quantize-source").selectOption("/home/user/models/SmolLM2-135M-Instruct");
    const q4 = page.locator('[data-testid="preset-row"][data-preset="Q4_K_M"]');
    await q4.waitFor();
    expect(await page.getByTestId("preset-row").count()).toBe(7);
    const size = q4.getByTestId("preset-size");
    const bytes = Number(await size.getAttribute("data-bytes"));
    // 134,515,008 parameters × 4.89 bits / 8, 32-byte aligned, + 1,785,536 header bytes
    expect(bytes).toBe(Math.round((134_515_008 * 4.89) / 8 / 32) * 32 + 1_785_536);
    expect(await size.innerText()).toBe("80.1 MiB");
    expect(await q4.innerText()).toMatch(/Recommended[\s\S]*−68\.8%[\s\S]*Fits/);
    expect(await q4.locator("input[type=radio]").isChecked()).toBe(true);
    await screenshot(page, "quantize-presets");

    // Watch every tensor index the bar shows.
    await page.evaluate(() => {
      (window as unknown as { seen: number[] }).seen = [];
      new MutationObserver(() => {
        const p = document.querySelector('[data-testid="quantize-progress"]');
        if (p) (window as unknown as { seen: number[] }).seen.push(Number(p.getAttribute("data-tensor")));
      }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await page.getByTestId("quantize-start").click();
    const progress = page.getByTestId("quantize-progress");
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="quantize-progress"]')?.getAttribute("data-tensor")) >= 4);
    expect(await progress.evaluate((p: HTMLProgressElement) => p.tagName)).toBe("PROGRESS");
    expect(await progress.evaluate((p: HTMLProgressElement) => p.max)).toBe(12);
    expect(await page.locator(".run-progress").innerText()).toMatch(/Tensor \d+ of 12[\s\S]*52\.3 MB\/s/);
    expect(await page.locator(".progress-head").getAttribute("aria-live")).toBe("polite");
    await screenshot(page, "quantize-running");

    const result = page.getByTestId("quantize-result");
    await result.waitFor();
    expect(Number(await result.getAttribute("data-bytes"))).toBe(bytes);
    expect(await result.innerText()).toMatch(/80\.1 MiB[\s\S]*exact[\s\S]*−68\.8%[\s\S]*1 min 12 s/);
    const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
    expect(new Set(seen.filter((n) => n > 0)).size).toBeGreaterThanOrEqual(6);
    await screenshot(page, "quantize-done");

    // "Compare" goes to the compare view with the new file chosen.
    await result.getByRole("button", { name: "Compare" }).click();
    const newId = "/home/user/.local/share/pocketlm/models/SmolLM2-135M-Instruct-Q4_K_M.gguf";
    await page.locator(`[data-testid="compare-version"][data-id="${newId}"]`).waitFor();
    expect(await page.getByTestId("compare-source").inputValue()).toBe(newId);
    expect(errors).toEqual([]);
  });

  test("cancel stops the run with the job id it was started with and says no file was written", async () => {
    const { page, errors } = await open({ fake: { tensors: 200, tensorDelayMs: 50 } });
    await page.getByTestId("nav-quantize").click();
    await page.locator('[data-testid="preset-row"][data-preset="Q6_K"]').click();
    expect(await page.locator('[data-testid="preset-row"][data-preset="Q6_K"] input').isChecked()).toBe(true);
    await page.getByTestId("quantize-start").click();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="quantize-progress"]')?.getAttribute("data-tensor")) >= 2);
    await page.getByTestId("quantize-cancel").click();
    await page.getByTestId("quantize-cancelled").waitFor();
    expect(await page.getByTestId("quantize-cancelled").innerText()).toBe("Cancelled — no file was written.");
    expect(await page.getByTestId("quantize-progress").count()).toBe(0);
    const [run] = await calls(page, "quantize_run");
    expect(run.preset).toBe("Q6_K");
    expect(await calls(page, "job_cancel")).toEqual([{ jobId: run.jobId }]);
    expect(String(run.jobId)).toMatch(/^[0-9a-f-]{36}$/);
    await screenshot(page, "quantize-cancelled");
    expect(errors).toEqual([]);
  });
});

describe("compare", () => {
  test("the chart shows each version's size and reduction; perplexity is measured with progress", async () => {
    const { page, errors } = await open({ fake: { chunkDelayMs: 120 } });
    await page.getByTestId("nav-compare").click();
    await page.getByTestId("compare-source").selectOption("/home/user/models/Llama-3.2-3B-Instruct");
    const versions = page.getByTestId("compare-version");
    await versions.nth(1).waitFor();
    expect(await versions.count()).toBe(2);
    expect(await versions.nth(0).getAttribute("data-bytes")).toBe("6425499648");
    expect(await versions.nth(1).getAttribute("data-bytes")).toBe("2012000000");
    const chart = page.locator(".size-chart");
    const text = await chart.innerText();
    expect(text).toMatch(/BF16[\s\S]*5\.98 GiB[\s\S]*original/);
    expect(text).toMatch(/Q4_K_M[\s\S]*1\.87 GiB[\s\S]*−68\.69%/);
    const widths = await chart.locator(".bar-fill").evaluateAll((rs) => rs.map((r) => r.getAttribute("width")));
    expect(widths).toEqual(["100.00%", "31.31%"]);

    await page.getByTestId("breakdown-type").click();
    expect(await page.locator(".breakdown-list").locator("rect").count()).toBeGreaterThanOrEqual(5);
    await expect(page.locator("section.panel").nth(1).innerText()).resolves.toMatch(/Q4_K[\s\S]*Q6_K/);

    const q4 = versions.nth(1);
    await q4.getByTestId("ppl-run").click();
    await page.getByTestId("ppl-progress").waitFor();
    await page.waitForFunction(() => /Chunk [2-8] of 8/.test(document.querySelector(".ppl-running")?.textContent ?? ""));
    await screenshot(page, "compare-measuring");
    await q4.getByTestId("ppl-value").waitFor();
    expect(await q4.getByTestId("ppl-value").innerText()).toMatch(/^13\.91\s*± 0\.12$/);
    expect(await chart.innerText()).toContain("ppl 13.91 ± 0.12");
    await page.getByTestId("breakdown-group").click();
    await screenshot(page, "compare");
    expect(errors).toEqual([]);
  });
});

describe("chat", () => {
  async function loadSmall(page: Page) {
    await page.getByTestId("nav-chat").click();
    await page.getByTestId("chat-model").selectOption("/home/user/.ollama/models/blobs/sha256-74701a8c35f6");
    await page.getByTestId("chat-load").click();
    await page.waitForFunction(() => !(document.querySelector('[data-testid="chat-input"]') as HTMLTextAreaElement).disabled);
  }

  test("a reply streams token by token, shows its figures and is saved", async () => {
    const { page, errors } = await open({ fake: { tokenDelayMs: 30 } });
    expect(await page.getByTestId("nav-chat").isVisible()).toBe(true);
    await loadSmall(page);
    expect(await page.getByTestId("chat-model").locator("option").count()).toBe(2); // runnable entries only
    await page.evaluate(() => {
      (window as unknown as { lengths: number[] }).lengths = [];
      new MutationObserver(() => {
        const m = [...document.querySelectorAll('[data-testid="chat-message"][data-role="assistant"]')].pop();
        if (m) (window as unknown as { lengths: number[] }).lengths.push(m.querySelector(".message-body")!.textContent!.length);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByTestId("chat-system").fill("Answer briefly.");
    await page.getByTestId("chat-input").fill("What is the capital of France?");
    const inputBox = await page.getByTestId("chat-input").boundingBox();
    await page.getByTestId("chat-input").press("Enter");
    await page.getByTestId("chat-stop").waitFor();
    expect((await page.getByTestId("chat-input").boundingBox())!.y).toBe(inputBox!.y); // the input does not move
    await page.getByTestId("chat-stats").waitFor();
    const lengths = await page.evaluate(() => (window as unknown as { lengths: number[] }).lengths);
    expect(new Set(lengths.filter((n) => n > 0)).size).toBeGreaterThanOrEqual(10);
    const reply = page.locator('[data-testid="chat-message"][data-role="assistant"]');
    expect(await reply.locator(".message-body").innerText()).toMatch(/^The capital of France is Paris\./);
    expect(await page.getByTestId("chat-stats").innerText()).toMatch(/tok\/s · first token 33 ms · context \d+ \/ 2,048/);
    expect((await page.getByTestId("chat-input").boundingBox())!.y).toBe(inputBox!.y);
    const [gen] = await calls(page, "chat_generate");
    expect(gen.system).toBe("Answer briefly.");
    expect(gen.settings).toEqual({ temperature: 0.7, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, maxTokens: 512, seed: null });
    expect(gen.messages).toEqual([{ role: "user", content: "What is the capital of France?" }]);
    await page.getByTestId("conversation-item").waitFor();
    expect(await page.getByTestId("conversation-item").innerText()).toContain("What is the capital of France?");
    const saved = await calls(page, "conversation_save");
    expect((saved.at(-1)!.conversation as { messages: unknown[] }).messages).toHaveLength(2);
    await screenshot(page, "chat");
    expect(errors).toEqual([]);
  });

  test("Stop cancels the running reply by its job id; Regenerate answers again", async () => {
    const { page, errors } = await open({ fake: { tokenDelayMs: 40 } });
    await loadSmall(page);
    await page.getByTestId("chat-input").fill("Write a long story about a lighthouse keeper.");
    await page.getByTestId("chat-send").click();
    await page.waitForFunction(() => (document.querySelector(".message-streaming .message-body")?.textContent ?? "").length > 40);
    await page.getByTestId("chat-stop").click();
    await page.getByTestId("chat-send").waitFor();
    const [gen] = await calls(page, "chat_generate");
    expect(await calls(page, "job_cancel")).toEqual([{ jobId: gen.jobId }]);
    const body = await page.locator('[data-testid="chat-message"][data-role="assistant"] .message-body').innerText();
    expect(body.length).toBeGreaterThan(40);
    expect(body.length).toBeLessThan(600); // the whole story is ~1,400 characters
    expect(await page.getByTestId("chat-stats").innerText()).toContain("stopped");
    await screenshot(page, "chat-stopped");

    await page.getByTestId("chat-regenerate").click();
    await page.getByTestId("chat-stop").waitFor();
    await page.keyboard.press("Escape"); // Escape stops too
    await page.getByTestId("chat-send").waitFor();
    const gens = await calls(page, "chat_generate");
    expect(gens).toHaveLength(2);
    expect(gens[1].messages).toEqual([{ role: "user", content: "Write a long story about a lighthouse keeper." }]);
    expect((await calls(page, "job_cancel")).map((c) => c.jobId)).toEqual([gen.jobId, gens[1].jobId]);
    expect(await page.locator('[data-testid="chat-message"]').count()).toBe(2);
    expect(errors).toEqual([]);
  });

  test("a model that does not fit shows the numbers and loads only on 'Load anyway'", async () => {
    const { page, errors } = await open({ fake: { availableMemory: 1.5 * 2 ** 30 } });
    await page.getByTestId("nav-chat").click();
    await page.getByTestId("chat-model").selectOption("/home/user/.local/share/pocketlm/models/Llama-3.2-3B-Instruct-Q4_K_M.gguf");
    await page.getByTestId("chat-load").click();
    const warning = page.getByTestId("chat-memory-warning");
    await warning.waitFor();
    expect(await warning.innerText()).toMatch(/needs 2\.05 GiB \(1\.87 GiB model \+ 135 MiB context cache\)[\s\S]*1\.50 GiB is available/);
    expect(await calls(page, "chat_load")).toEqual([]);
    await screenshot(page, "chat-memory-warning");
    await page.getByTestId("chat-load-anyway").click();
    await warning.waitFor({ state: "detached" });
    await page.getByTestId("chat-status").getByText("Llama-3.2-3B-Instruct-Q4_K_M").waitFor();
    expect((await calls(page, "chat_load")).map((c) => c.force)).toEqual([true]);

    await page.getByTestId("chat-unload").click();
    await page.getByTestId("chat-status").getByText("No model loaded").waitFor();
    expect(await page.getByTestId("chat-input").isDisabled()).toBe(true);
    expect(await calls(page, "chat_unload")).toHaveLength(1);
    expect(await page.getByTestId("chat-unload").count()).toBe(0);
    expect(errors).toEqual([]);
  });
});

describe("layout", () => {
  test("phone width: bottom tab bar, no horizontal overflow, tables as cards", async () => {
    const { page, errors } = await open({ width: 390, height: 844 });
    await page.getByTestId("model-row").first().waitFor();
    for (const view of ["library", "quantize", "compare", "chat"]) {
      await page.getByTestId(`nav-${view}`).click();
      await page.waitForTimeout(200);
      const { scrollWidth, innerWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
      }));
      expect(scrollWidth, `${view} overflows`).toBeLessThanOrEqual(innerWidth);
      const nav = await page.locator("nav.nav").boundingBox();
      expect(nav!.y + nav!.height).toBeCloseTo(844, 0); // at the bottom of the screen
      expect(nav!.width).toBeCloseTo(390, 0);
      await screenshot(page, `phone-${view}`);
    }
    await page.getByTestId("nav-library").click();
    expect(await page.locator("thead").first().isVisible()).toBe(false);
    expect(await page.getByTestId("model-row").first().evaluate((r) => getComputedStyle(r).display)).toBe("block");
    expect(errors).toEqual([]);
  });

  test("dark mode follows the OS", async () => {
    const { page, errors } = await open({ colorScheme: "dark" });
    await page.getByTestId("model-row").first().waitFor();
    const luminance = (rgb: string) => {
      const [r, g, b] = rgb.match(/\d+/g)!.map(Number);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const fg = await page.evaluate(() => getComputedStyle(document.body).color);
    expect(luminance(bg)).toBeLessThan(40);
    expect(luminance(fg)).toBeGreaterThan(200);
    await screenshot(page, "dark-library");
    for (const view of ["quantize", "compare", "chat"]) {
      await page.getByTestId(`nav-${view}`).click();
      await page.waitForTimeout(200);
      await screenshot(page, `dark-${view}`);
    }
    await page.emulateMedia({ colorScheme: "light" });
    expect(luminance(await page.evaluate(() => getComputedStyle(document.body).backgroundColor))).toBeGreaterThan(230);
    expect(errors).toEqual([]);
  });

  test("keyboard: the nav is reachable with Tab and shows a visible focus ring", async () => {
    const { page, errors } = await open();
    await page.getByTestId("model-row").first().waitFor();
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement?.getAttribute("data-testid"));
    expect(focused).toBe("nav-library");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.getByTestId("quantize-source").waitFor();
    const outline = await page.getByTestId("nav-quantize").evaluate((el) => getComputedStyle(el).outlineStyle);
    expect(outline).toBe("solid");
    expect(errors).toEqual([]);
  });
});
