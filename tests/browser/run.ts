/**
 * Runs the browser suite (suite.ts) in headless Chromium with WebGPU (Dawn over SwiftShader
 * where there is no GPU), driven by puppeteer-core, and prints one count line.
 *
 *   deno task test:browser [--only ops,ad] [--chromium /usr/bin/chromium]
 *
 * The suite is bundled with esbuild, served from localhost (WebGPU needs a secure context),
 * and run in one page. Browser console warnings and errors that are not the suite's own
 * lines (a WGSL warning, an uncaptured WebGPU error) are shown and fail the run.
 */
import puppeteer from "npm:puppeteer-core@25.16.0";
import { bundle } from "../../tools/bundle.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const chromium = arg("chromium", "/usr/bin/chromium");
const only = arg("only", "");
const timeoutMs = Number(arg("timeout", "1500")) * 1000;

const dir = await Deno.makeTempDir({ prefix: "curvature-browser-" });
await bundle(new URL("./suite.ts", import.meta.url).pathname, `${dir}/suite.js`);
const page = `<!doctype html><meta charset="utf-8"><title>curvature browser suite</title>
<script type="module" src="suite.js"></script>`;
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
  const path = new URL(req.url).pathname;
  if (path === "/") return new Response(page, { headers: { "content-type": "text/html" } });
  if (path === "/favicon.ico") return new Response(null, { status: 204 });
  try {
    const body = await Deno.readFile(`${dir}${path.replace(/\.\./g, "")}`);
    const type = path.endsWith(".js") ? "text/javascript" : "application/json";
    return new Response(body, { headers: { "content-type": type } });
  } catch {
    return new Response("not found", { status: 404 });
  }
});

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  // root in a container needs --no-sandbox; WebGPU on Linux is behind --enable-unsafe-webgpu
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-dev-shm-usage"],
  protocolTimeout: timeoutMs,
});
let report: { passed: number; failed: number; adapter: string; ms: number } | undefined;
const foreign: string[] = [];
try {
  const tab = await browser.newPage();
  tab.on("console", (m) => {
    const text = m.text();
    if (m.type() === "log" && /^(ok|FAILED|adapter): /.test(text)) console.log(text);
    else if (m.type() === "log" || m.type() === "info" || m.type() === "debug") {
      console.log(`page: ${text}`);
    } else {
      console.log(`browser ${m.type()}: ${text}`);
      foreign.push(`${m.type()}: ${text}`);
    }
  });
  tab.on("pageerror", (e) => {
    console.log(`page error: ${e}`);
    foreign.push(`page error: ${e}`);
  });
  const url = `http://localhost:${server.addr.port}/${only ? `?only=${only}` : ""}`;
  await tab.goto(url);
  const deadline = Date.now() + timeoutMs;
  while (!report && Date.now() < deadline && !foreign.some((f) => f.startsWith("page error"))) {
    await new Promise((r) => setTimeout(r, 1000));
    report = await tab.evaluate(() => globalThis.suiteReport);
  }
} finally {
  await browser.close();
  await server.shutdown();
  await Deno.remove(dir, { recursive: true });
}

const version = new TextDecoder().decode(
  (await new Deno.Command(chromium, { args: ["--version"], stderr: "null" }).output()).stdout,
).trim();
if (!report) {
  console.log(`browser suite: did not finish (${foreign.length} browser errors) — ${version}`);
  Deno.exit(1);
}
console.log(
  `\nbrowser suite: ${report.passed} passed, ${report.failed} failed, ${foreign.length} browser ` +
    `warnings/errors (${version}; ${report.adapter}; ${(report.ms / 1000).toFixed(0)} s)`,
);
Deno.exit(report.failed === 0 && foreign.length === 0 ? 0 : 1);
