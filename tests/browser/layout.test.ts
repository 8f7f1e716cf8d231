// No view may make the page scroll sideways, whatever the names it shows: every view, and the chat with a model
// loaded, at a laptop window, a small laptop window and a phone, with a 120-character model name and a long
// conversation title (the fake backend's `longNames` option). Screenshots go to target/ui-screenshots/layout-*.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launch, openApp, screenshot, serveDist } from "./harness";
import { LONG_MODEL_ID, LONG_NAME, LONG_TITLE } from "./long-names";

let browser: Browser;
let server: { url: string; close: () => Promise<void> };

beforeAll(async () => {
  server = await serveDist();
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const SIZES: [number, number][] = [
  [1200, 800],
  [1024, 700],
  [390, 844],
];

/** The page does not scroll sideways and the whole nav is on screen. */
async function expectFits(page: Page, where: string) {
  const m = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
    scrollX: window.scrollX,
  }));
  expect(m.scrollWidth, `${where}: the page is ${m.scrollWidth} px wide in a ${m.innerWidth} px window`).toBeLessThanOrEqual(m.innerWidth);
  expect(m.bodyScrollWidth, `${where}: body is ${m.bodyScrollWidth} px wide`).toBeLessThanOrEqual(m.innerWidth);
  expect(m.scrollX, `${where}: the page is scrolled sideways`).toBe(0);
  const nav = (await page.locator("nav.nav").boundingBox())!;
  expect(nav, `${where}: no nav`).not.toBeNull();
  expect(nav.x, `${where}: the nav starts off screen`).toBeGreaterThanOrEqual(0);
  expect(nav.y, `${where}: the nav starts off screen`).toBeGreaterThanOrEqual(0);
  expect(nav.x + nav.width, `${where}: the nav ends off screen`).toBeLessThanOrEqual(m.innerWidth + 0.5);
  expect(nav.y + nav.height, `${where}: the nav ends off screen`).toBeLessThanOrEqual(m.innerHeight + 0.5);
  expect(await page.getByTestId("nav-library").isVisible()).toBe(true);
}

/** Every child of `selector` lies inside it horizontally (nothing pokes out of its column). */
async function expectChildrenInside(page: Page, selector: string, where: string) {
  const out = await page.evaluate((sel) => {
    const box = document.querySelector(sel)!.getBoundingClientRect();
    return [...document.querySelector(sel)!.children]
      .filter((c) => getComputedStyle(c).display !== "none" && !c.classList.contains("visually-hidden"))
      .map((c) => ({ c, r: c.getBoundingClientRect() }))
      .filter(({ r }) => r.left < box.left - 0.5 || r.right > box.right + 0.5)
      .map(({ c, r }) => `${c.tagName.toLowerCase()}.${c.className} [${Math.round(r.left)}, ${Math.round(r.right)}] outside [${Math.round(box.left)}, ${Math.round(box.right)}]`);
  }, selector);
  expect(out, `${where}: ${selector} overflows`).toEqual([]);
}

describe.each(SIZES)("no sideways scrolling at %i×%i with long names", (width, height) => {
  test("library, quantize, compare and chat with a model loaded", async () => {
    const { page, errors } = await openApp(browser, server.url, { width, height, fake: { longNames: true } });
    const tag = `${width}x${height}`;
    const longRow = page.locator(`[data-testid="model-row"][data-id="${LONG_MODEL_ID}"]`);
    await longRow.waitFor();
    await expectFits(page, `library ${tag}`);
    // The name ellipsizes (its title has all of it) instead of widening the table past its box.
    const wrap = await page.locator(".table-wrap").evaluate((w) => ({ scroll: w.scrollWidth, client: w.clientWidth }));
    expect(wrap.scroll, `library ${tag}: the table is wider than its box`).toBeLessThanOrEqual(wrap.client);
    expect(await longRow.getByRole("button", { name: LONG_NAME, exact: true }).getAttribute("title")).toBe(LONG_NAME);

    // The long model's details panel has the name as its heading.
    await longRow.getByRole("button", { name: LONG_NAME, exact: true }).click();
    await page.getByTestId("model-details").getByRole("rowheader", { name: "feed-forward" }).waitFor();
    await expectFits(page, `library details ${tag}`);
    await screenshot(page, `layout-${tag}-library`);

    await page.getByTestId("nav-quantize").click();
    await page.getByTestId("quantize-source").selectOption(LONG_MODEL_ID);
    await page.locator('[data-testid="preset-row"][data-preset="Q4_K_M"]').waitFor();
    await expectFits(page, `quantize ${tag}`);
    await screenshot(page, `layout-${tag}-quantize`);

    await page.getByTestId("nav-compare").click();
    await page.getByTestId("compare-source").selectOption(LONG_MODEL_ID);
    await page.getByTestId("compare-version").first().waitFor();
    await expectFits(page, `compare ${tag}`);
    await screenshot(page, `layout-${tag}-compare`);

    await page.getByTestId("nav-chat").click();
    const item = page.locator('[data-testid="conversation-item"]').filter({ hasText: LONG_TITLE });
    if (width < 860) await page.getByRole("button", { name: "Conversations" }).click(); // the list is a drawer there
    await item.waitFor();
    await expectFits(page, `chat ${tag}`);
    expect(await item.locator(".conversation-title").getAttribute("title")).toBe(LONG_TITLE);
    await item.locator(".conversation-open").click();
    await page.getByTestId("chat-message").first().waitFor();

    await page.getByTestId("chat-model").selectOption(LONG_MODEL_ID);
    expect(await page.getByTestId("chat-model").getAttribute("title")).toContain(LONG_NAME);
    await page.getByTestId("chat-load").click();
    await page.waitForFunction(() => !(document.querySelector('[data-testid="chat-input"]') as HTMLTextAreaElement).disabled);
    const status = page.getByTestId("chat-status");
    expect(await status.getAttribute("title")).toContain(LONG_NAME);
    // A click scrolls its target into view, as the real window did when the toolbar was too wide.
    await page.getByTestId("chat-settings-toggle").click();
    await page.locator(".settings-panel").waitFor();
    await expectFits(page, `chat loaded ${tag}`);
    await expectChildrenInside(page, ".chat-toolbar", `chat loaded ${tag}`);
    await expectChildrenInside(page, ".chat-main", `chat loaded ${tag}`);
    await screenshot(page, `layout-${tag}-chat-loaded`);
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
