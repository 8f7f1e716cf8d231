// A small W3C WebDriver client over fetch: just what the end-to-end test needs to drive the real app through
// tauri-driver (which forwards to WebKitWebDriver). Errors carry the WebDriver message and the command.

export const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export class WebDriver {
  constructor(base) {
    this.base = base;
    this.session = null;
  }

  async cmd(method, path, body) {
    const url = this.session && !path.startsWith("/session ")
      ? `${this.base}/session/${this.session}${path}`
      : `${this.base}${path.replace(/^\/session /, "/session")}`;
    const res = await fetch(url, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const v = json.value || {};
      throw new Error(`WebDriver ${method} ${path}: ${v.error || res.status} ${v.message || ""}`.trim());
    }
    return json.value;
  }

  async start(capabilities) {
    const v = await this.cmd("POST", "/session ", { capabilities: { alwaysMatch: capabilities } });
    this.session = v.sessionId;
    return v;
  }

  async quit() {
    if (this.session) await this.cmd("DELETE", "").catch(() => {});
    this.session = null;
  }

  async find(css) {
    const v = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return v[ELEMENT];
  }

  async findAll(css) {
    const v = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }

  /** Scrolls the element to the middle of the view (a sticky header may cover its top edge), then clicks it. */
  async click(el) {
    await this.exec("arguments[0].scrollIntoView({ block: 'center', inline: 'nearest' })", { [ELEMENT]: el });
    return this.cmd("POST", `/element/${el}/click`, {});
  }

  async type(el, text) {
    await this.cmd("POST", `/element/${el}/clear`, {});
    return this.cmd("POST", `/element/${el}/value`, { text });
  }

  text(el) {
    return this.cmd("GET", `/element/${el}/text`);
  }

  attr(el, name) {
    return this.cmd("GET", `/element/${el}/attribute/${name}`);
  }

  exec(script, ...args) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  execAsync(script, ...args) {
    return this.cmd("POST", "/execute/async", { script, args });
  }

  /** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws naming `what`). */
  async waitFor(what, fn, timeoutMs = 30000, everyMs = 100) {
    const end = Date.now() + timeoutMs;
    let lastErr = null;
    while (Date.now() < end) {
      try {
        const v = await fn();
        if (v) return v;
      } catch (e) {
        lastErr = e;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr.message})` : ""}`);
  }

  /** Waits for an element matching `css` and returns it. */
  waitForElement(css, timeoutMs) {
    return this.waitFor(css, async () => {
      const els = await this.findAll(css);
      return els[0];
    }, timeoutMs);
  }
}
