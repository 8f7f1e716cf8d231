// The real PocketLM app, end to end: tauri-driver + WebKitWebDriver drive the built window (started by
// scripts/test-app.sh under Xvfb) through what a user does — add the demo model, quantize it to Q4_K_M (progress
// advances, the file appears with the predicted size; a cancelled run leaves no file), compare both sizes, chat with
// streamed tokens, stop a reply, and read the error a corrupt model file gets. Each view is photographed.
//
// Environment (set by scripts/test-app.sh): POCKETLM_APP (the binary), POCKETLM_DEMO_SOURCE (the BF16 Hugging Face
// folder), POCKETLM_MODELS_DIR (the app's models folder, empty at start), E2E_SCRATCH, E2E_SCREENSHOTS, DISPLAY.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ELEMENT, WebDriver } from "./webdriver.mjs";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through scripts/test-app.sh`);
  return v;
};
const app = env("POCKETLM_APP");
const demo = fs.realpathSync(env("POCKETLM_DEMO_SOURCE"));
const modelsDir = env("POCKETLM_MODELS_DIR");
const scratch = env("E2E_SCRATCH");
const shots = env("E2E_SCREENSHOTS");
const driver = new WebDriver(process.env.TAURI_DRIVER_URL || "http://127.0.0.1:4444");

const $ = (css) => driver.waitForElement(css);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A picture of the X screen (WebDriver's own screenshot can be a stale frame under Xvfb). */
async function screenshot(name) {
  await sleep(400); // let the last frame paint
  fs.mkdirSync(shots, { recursive: true });
  execFileSync("import", ["-window", "root", path.join(shots, `${name}.png`)]);
}

async function nav(view) {
  await driver.click(await $(`[data-testid="nav-${view}"]`));
}

/** Chooses the option with value `value` in a <select> and tells the UI (as a user's pick would). */
async function choose(selectCss, value) {
  await driver.waitFor(`${selectCss} to offer ${value}`, () =>
    driver.exec(
      `const s = document.querySelector(arguments[0]);
       if (!s || ![...s.options].some(o => o.value === arguments[1])) return false;
       s.value = arguments[1];
       s.dispatchEvent(new Event('input', { bubbles: true }));
       s.dispatchEvent(new Event('change', { bubbles: true }));
       return true;`,
      selectCss,
      value,
    ),
  );
}

/** Picks a preset by its radio button, scrolled into view first. */
async function pickPreset(name) {
  const radio = await $(`[data-testid="preset-row"][data-preset="${name}"] input[type="radio"]`);
  await driver.exec("arguments[0].scrollIntoView({ block: 'center' })", { [ELEMENT]: radio });
  await driver.click(radio);
  await driver.waitFor(`${name} to be chosen`, () => driver.exec("return arguments[0].checked", { [ELEMENT]: radio }));
}

function filesIn(dir) {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

before(async () => {
  await driver.waitFor("tauri-driver", () => fetch(`${driver.base}/status`).then((r) => r.ok), 20000, 250);
  await driver.start({ "tauri:options": { application: app }, browserName: "wry" });
  await $('[data-testid="nav-library"]');
});

after(async () => {
  await driver.quit();
});

let q4Path = null;

test("the library starts with an empty state and takes the demo model by path", async () => {
  await nav("library");
  await screenshot("library-empty");
  await driver.type(await $('[data-testid="add-path-input"]'), demo);
  await driver.click(await $('[data-testid="add-path-submit"]'));
  const row = await $(`[data-testid="model-row"][data-id="${demo}"]`);
  await screenshot("library");
  // textContent: WebKitWebDriver's rendered-text heuristic skips text in ellipsized boxes, which users do see.
  const text = await driver.exec("return arguments[0].textContent", { [ELEMENT]: row });
  assert.match(text, /SmolLM2/i, `the row names the model: ${JSON.stringify(text)}`);
  assert.match(text, /BF16/, "the row shows its type");
  assert.match(text, /llama/i, "the row shows its architecture");
});

test("a corrupt model file gets a readable error naming it", async () => {
  const bad = path.join(scratch, "corrupt.gguf");
  fs.writeFileSync(bad, Buffer.concat([Buffer.from("GGUF"), Buffer.from([3, 0, 0, 0]), Buffer.alloc(9, 0xff)]));
  await driver.type(await $('[data-testid="add-path-input"]'), bad);
  await driver.click(await $('[data-testid="add-path-submit"]'));
  const banner = await $('[data-testid="error-banner"]');
  const msg = await driver.text(banner);
  assert.match(msg, /corrupt\.gguf/, `the error names the file: ${msg}`);
  assert.doesNotMatch(msg, /panicked|unwrap|RUST_BACKTRACE/i);
  await screenshot("library-error");
});

test("quantizing to Q4_K_M shows progress and makes a file of the predicted size", async () => {
  await nav("quantize");
  await choose('[data-testid="quantize-source"]', demo);
  await $('[data-testid="preset-row"][data-preset="Q4_K_M"]');
  const size = await driver.waitFor("the Q4_K_M size", async () => {
    const el = await driver.findAll('[data-testid="preset-row"][data-preset="Q4_K_M"] [data-testid="preset-size"]');
    return el[0] && Number(await driver.attr(el[0], "data-bytes"));
  });
  assert.ok(size > 50e6 && size < 150e6, `predicted size ${size}`);
  await pickPreset("Q4_K_M");
  await screenshot("quantize-presets");
  // Record every tensor index the progress bar shows, from inside the page, so no update is missed.
  await driver.exec(`
    window.__seen = [];
    new MutationObserver(() => {
      const p = document.querySelector('[data-testid="quantize-progress"]');
      if (p) window.__seen.push(Number(p.getAttribute('data-tensor')));
    }).observe(document.body, { subtree: true, childList: true, attributes: true });`);
  await driver.click(await $('[data-testid="quantize-start"]'));
  await screenshot("quantize-running");
  const result = await driver.waitFor("the quantize result", () => driver.findAll('[data-testid="quantize-result"]').then((e) => e[0]), 240000, 250);
  const seen = await driver.exec("return window.__seen");
  const distinct = [...new Set(seen.filter((n) => n > 0))];
  assert.ok(distinct.length >= 3, `progress advanced through several tensors: ${distinct.slice(0, 10)}`);
  const bytes = Number(await driver.attr(result, "data-bytes"));
  assert.equal(bytes, size, "the file has the predicted size");
  const made = filesIn(modelsDir).filter((f) => f.endsWith(".gguf"));
  assert.equal(made.length, 1, `one file in the models folder: ${made}`);
  q4Path = fs.realpathSync(path.join(modelsDir, made[0]));
  assert.equal(fs.statSync(q4Path).size, size);
  assert.match(made[0], /Q4_K_M\.gguf$/);
  await screenshot("quantize-done");
});

test("a cancelled quantization leaves no file", async () => {
  const before = filesIn(modelsDir);
  await choose('[data-testid="quantize-source"]', demo);
  await pickPreset("Q6_K");
  // Start, and click Cancel the moment the first progress shows — from inside the page, so the job is mid-way.
  const outcome = await driver.execAsync(`
    const done = arguments[arguments.length - 1];
    const obs = new MutationObserver(() => {
      const p = document.querySelector('[data-testid="quantize-progress"]');
      const c = document.querySelector('[data-testid="quantize-cancel"]');
      if (p && c && Number(p.getAttribute('data-tensor')) >= 1) { obs.disconnect(); c.click(); done('clicked'); }
      else if (document.querySelector('[data-testid="quantize-result"]')) { obs.disconnect(); done('finished'); }
    });
    obs.observe(document.body, { subtree: true, childList: true, attributes: true });
    document.querySelector('[data-testid="quantize-start"]').click();`);
  assert.equal(outcome, "clicked", "the run was cancelled mid-way");
  await $('[data-testid="quantize-cancelled"]');
  await sleep(500);
  assert.deepEqual(filesIn(modelsDir), before, "no output and no temporary file");
  await screenshot("quantize-cancelled");
});

test("compare shows the original and the Q4_K_M file with their sizes", async () => {
  await nav("compare");
  await choose('[data-testid="compare-source"]', demo);
  await driver.waitFor("two versions", () => driver.findAll('[data-testid="compare-version"]').then((e) => e.length >= 2));
  const versions = await driver.findAll('[data-testid="compare-version"]');
  const sizes = {};
  for (const v of versions) sizes[await driver.attr(v, "data-id")] = Number(await driver.attr(v, "data-bytes"));
  assert.equal(sizes[q4Path], fs.statSync(q4Path).size, "the Q4_K_M bar has the file's size");
  assert.ok(sizes[demo] > sizes[q4Path] * 2, `the BF16 original is much larger: ${JSON.stringify(sizes)}`);
  const text = await driver.exec("return document.body.innerText");
  assert.match(text, /−\d+(\.\d+)?\s?%|-\d+(\.\d+)?\s?%/, "a reduction percentage is shown");
  // Quality beside size: perplexity of the Q4_K_M file on the engine's bundled text, with progress.
  const q4Row = `[data-testid="compare-version"][data-id="${q4Path}"]`;
  await driver.click(await $(`${q4Row} [data-testid="ppl-run"]`));
  const value = await driver.waitFor("the perplexity", async () => {
    const el = await driver.findAll(`${q4Row} [data-testid="ppl-value"]`);
    return el[0] && driver.text(el[0]);
  }, 180000, 250);
  const ppl = parseFloat(value);
  assert.ok(ppl > 1 && ppl < 1000, `a plausible perplexity: ${value}`);
  // The BF16 original too (measured through a temporary GGUF of the folder): quantization costs some quality.
  const bfRow = `[data-testid="compare-version"][data-id="${demo}"]`;
  await driver.click(await $(`${bfRow} [data-testid="ppl-run"]`));
  const bfValue = await driver.waitFor("the original's perplexity", async () => {
    const el = await driver.findAll(`${bfRow} [data-testid="ppl-value"]`);
    return el[0] && driver.text(el[0]);
  }, 300000, 250);
  const bfPpl = parseFloat(bfValue);
  assert.ok(bfPpl > 1 && bfPpl < ppl * 1.05, `the original (${bfValue}) is not worse than Q4_K_M (${value})`);
  assert.deepEqual(filesIn(path.join(env("POCKETLM_DATA_DIR"), "tmp")), [], "the temporary GGUF is gone");
  await screenshot("compare");
});

test("chat streams a reply, and stop ends the next one", async () => {
  await nav("chat");
  await choose('[data-testid="chat-model"]', q4Path);
  await driver.click(await $('[data-testid="chat-load"]'));
  const input = await driver.waitFor("the chat input to be enabled", async () => {
    const el = await driver.findAll('[data-testid="chat-input"]');
    return el[0] && (await driver.exec("return !arguments[0].disabled", { [ELEMENT]: el[0] })) && el[0];
  }, 60000);
  // Watch the assistant's text grow in several steps: tokens stream, not one block at the end.
  await driver.exec(`
    window.__lengths = [];
    new MutationObserver(() => {
      const m = [...document.querySelectorAll('[data-testid="chat-message"][data-role="assistant"] .message-body')].pop();
      if (m) window.__lengths.push(m.textContent.length);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });`);
  await driver.type(input, "What is the capital of France?");
  await driver.click(await $('[data-testid="chat-send"]'));
  await driver.waitForElement('[data-testid="chat-stats"]', 120000);
  const lengths = await driver.exec("return window.__lengths");
  const distinct = new Set(lengths.filter((n) => n > 0));
  assert.ok(distinct.size >= 3, `the reply grew in steps: ${[...distinct].slice(0, 10)}`);
  const replies = await driver.findAll('[data-testid="chat-message"][data-role="assistant"]');
  const reply = await driver.text(replies[replies.length - 1]);
  assert.ok(reply.trim().length > 0, "a non-empty reply");
  await screenshot("chat");

  // A long answer, stopped once it has started.
  const statsBefore = (await driver.findAll('[data-testid="chat-stats"]')).length;
  await driver.type(await $('[data-testid="chat-input"]'), "Write a long story about a lighthouse keeper, in many paragraphs.");
  await driver.click(await $('[data-testid="chat-send"]'));
  const stop = await $('[data-testid="chat-stop"]');
  // Stop once the reply has begun streaming (its body holds text), not while the prompt is read.
  await driver.waitFor("the second reply to start", () => driver.exec(`
    const m = [...document.querySelectorAll('[data-testid="chat-message"][data-role="assistant"] .message-body')];
    return m.length >= 2 && m[m.length - 1].textContent.trim().length >= 10;`), 60000, 50);
  await driver.click(stop);
  await driver.waitFor("the reply to end after stop", async () => (await driver.findAll('[data-testid="chat-stop"]')).length === 0 ||
    (await driver.findAll('[data-testid="chat-stats"]')).length > statsBefore, 20000);
  const body = await driver.exec("return document.body.innerText");
  assert.match(body, /stopped|cancelled/i, "the UI says the reply was stopped");
  const kept = await driver.exec(`
    const m = [...document.querySelectorAll('[data-testid="chat-message"][data-role="assistant"] .message-body')];
    return m[m.length - 1].textContent.trim();`);
  assert.ok(kept.length >= 10, `the stopped reply keeps what was written: ${JSON.stringify(kept)}`);
  await screenshot("chat-stopped");
});
