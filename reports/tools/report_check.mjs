// Open a schedlab report in headless Chromium and check it the way a reader would see it:
// every <img> loaded (no broken image), no console error or failed load, and a full-page
// screenshot for a person to look at. No npm packages: it speaks the DevTools protocol over
// Chromium's --remote-debugging-pipe (file descriptors 3 and 4, NUL-terminated JSON).
//
//   node reports/tools/report_check.mjs [--min-images N] path/to/index.html [screenshot.png]
//
// A report is its figures: a page with fewer than N images (default 1) fails too.
// Exit 0 when all is well, 1 with one line per problem otherwise, 2 on bad usage.
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
let minImages = 1;
const mi = args.indexOf("--min-images");
if (mi >= 0) {
  minImages = Number(args[mi + 1]);
  if (!Number.isInteger(minImages) || minImages < 0) {
    console.error(`report_check: --min-images ${args[mi + 1] ?? ""}: expected a whole number >= 0`);
    process.exit(2);
  }
  args.splice(mi, 2);
}
const [page, shot = "screenshot.png"] = args;
if (!page || !existsSync(page)) {
  console.error(`report_check: ${page ?? "(no page)"}: no such file; usage: report_check.mjs INDEX_HTML [SCREENSHOT_PNG]`);
  process.exit(2);
}
const browser = ["chromium", "chromium-browser", "google-chrome"].find((b) =>
  process.env.PATH.split(":").some((d) => existsSync(`${d}/${b}`)),
);
if (!browser) {
  console.error("report_check: chromium not found (apt-get install chromium)");
  process.exit(2);
}

const proc = spawn(
  browser,
  ["--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--allow-file-access-from-files", "about:blank"],
  { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
);
const out = proc.stdio[3];
const inp = proc.stdio[4];
let nextId = 1;
const waiting = new Map();
const listeners = [];
let buf = Buffer.alloc(0);
inp.on("data", (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  let i;
  while ((i = buf.indexOf(0)) >= 0) {
    const msg = JSON.parse(buf.subarray(0, i).toString("utf8"));
    buf = buf.subarray(i + 1);
    if (msg.id && waiting.has(msg.id)) {
      const { ok, fail } = waiting.get(msg.id);
      waiting.delete(msg.id);
      msg.error ? fail(new Error(JSON.stringify(msg.error))) : ok(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  }
});
function send(method, params = {}, sessionId) {
  const id = nextId++;
  out.write(JSON.stringify({ id, method, params, sessionId }) + "\0");
  return new Promise((ok, fail) => waiting.set(id, { ok, fail }));
}
const timer = setTimeout(() => {
  console.error("report_check: timed out after 120 s");
  proc.kill();
  process.exit(1);
}, 120_000);

const problems = [];
try {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const s = (m, p) => send(m, p, sessionId);
  listeners.push((msg) => {
    if (msg.sessionId !== sessionId) return;
    const p = msg.params;
    if (msg.method === "Runtime.consoleAPICalled" && (p.type === "error" || p.type === "assert")) {
      problems.push(`console ${p.type}: ${p.args.map((a) => a.value ?? a.description).join(" ")}`);
    } else if (msg.method === "Runtime.exceptionThrown") {
      problems.push(`exception: ${p.exceptionDetails.text}`);
    } else if (msg.method === "Log.entryAdded" && p.entry.level === "error") {
      problems.push(`console error: ${p.entry.text} ${p.entry.url ?? ""}`.trim());
    } else if (msg.method === "Network.loadingFailed") {
      problems.push(`failed to load: ${p.errorText} (${p.type})`);
    }
  });
  await s("Runtime.enable");
  await s("Log.enable");
  await s("Network.enable");
  await s("Page.enable");
  await s("Emulation.setDeviceMetricsOverride", { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false });
  const loaded = new Promise((ok) => listeners.push((m) => m.sessionId === sessionId && m.method === "Page.loadEventFired" && ok()));
  const url = pathToFileURL(resolve(page)).href;
  const nav = await s("Page.navigate", { url });
  if (nav.errorText) problems.push(`navigation failed: ${nav.errorText}`);
  await loaded;
  const { result } = await s("Runtime.evaluate", {
    expression: `JSON.stringify([...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, h: i.naturalHeight})))`,
    returnByValue: true,
  });
  const images = JSON.parse(result.value);
  for (const im of images) if (!im.ok) problems.push(`broken image: ${im.src}`);
  if (images.length < minImages) problems.push(`${images.length} images on the page, expected at least ${minImages}`);
  const metrics = await s("Page.getLayoutMetrics");
  const size = metrics.cssContentSize ?? metrics.contentSize;
  const { data } = await s("Page.captureScreenshot", {
    format: "png",
    captureBeyondViewport: true,
    clip: { x: 0, y: 0, width: Math.ceil(size.width), height: Math.ceil(size.height), scale: 1 },
  });
  writeFileSync(shot, Buffer.from(data, "base64"));
  console.log(`report_check: ${url}: ${images.length} images, ${images.filter((i) => i.ok).length} loaded; page ${Math.ceil(size.width)}x${Math.ceil(size.height)} px; screenshot ${shot}`);
  await send("Browser.close").catch(() => {});
} catch (e) {
  problems.push(`protocol error: ${e.message}`);
  proc.kill();
}
clearTimeout(timer);
for (const p of problems) console.error(`report_check: ${p}`);
process.exit(problems.length ? 1 : 0);
