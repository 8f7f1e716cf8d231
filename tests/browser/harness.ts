// What every browser test needs: the built UI served on a free port, the fake backend bundled once, and a headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core) with pages that start with the fake installed.
import { build } from "esbuild";
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type Page } from "playwright-core";
import type { FakeOptions } from "./fake-backend";

export const ROOT = resolve(import.meta.dirname, "../..");
const DIST = join(ROOT, "ui/dist");
export const SCREENSHOTS = join(ROOT, "target/ui-screenshots");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
};

/** Serves ui/dist (index.html for unknown paths) on 127.0.0.1 at a free port. */
export async function serveDist(): Promise<{ url: string; close: () => Promise<void> }> {
  if (!existsSync(join(DIST, "index.html"))) throw new Error(`${DIST}/index.html is missing: run \`npm run build\` first`);
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    let file = join(DIST, path);
    if (!file.startsWith(DIST) || !existsSync(file) || statSync(file).isDirectory()) file = join(DIST, "index.html");
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((ok) => server.close(() => ok())) };
}

let fakeCode: string | null = null;

/** The fake backend as one script for addInitScript. */
export async function fakeBackend(): Promise<string> {
  if (fakeCode) return fakeCode;
  const out = await build({
    entryPoints: [join(ROOT, "tests/browser/fake-backend.ts")],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "chrome110",
    write: false,
    logLevel: "silent",
  });
  fakeCode = out.outputFiles[0].text;
  return fakeCode;
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}

export interface PageOptions {
  fake?: FakeOptions;
  width?: number;
  height?: number;
  colorScheme?: "light" | "dark";
}

/** A fresh page (own context, so own storage) with the fake backend installed before the app's scripts run. The
 *  page fails the test on any uncaught error or console error. */
export async function openApp(browser: Browser, url: string, o: PageOptions = {}): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: { width: o.width ?? 1280, height: o.height ?? 820 },
    colorScheme: o.colorScheme ?? "light",
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000); // a missing element fails with its locator, well before the test's own timeout
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  await page.addInitScript(`window.__FAKE_OPTIONS__ = ${JSON.stringify(o.fake ?? {})};`);
  await page.addInitScript(await fakeBackend());
  await page.goto(url);
  await page.getByTestId("nav-library").waitFor();
  return { page, errors };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.waitForTimeout(150); // let transitions settle
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}
