// Loads `coherence report`'s page in headless Chromium and checks what a reviewer relies on:
// the page loads with no error and fetches nothing, every diagram renders, and every violated
// cell's link lands on its counterexample.
//
// node check-report.cjs PAGE.html SCREENSHOT.png   (PLAYWRIGHT_CORE: where playwright-core is)
"use strict";
const path = require("path");
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");

const [page_path, screenshot] = process.argv.slice(2);
if (!page_path || !screenshot) {
  console.error("usage: node check-report.cjs PAGE.html SCREENSHOT.png");
  process.exit(2);
}
const url = "file://" + path.resolve(page_path);
const failures = [];
const fail = (what) => failures.push(what);

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 60_000,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.setDefaultTimeout(30_000);
    page.on("console", (m) => { if (m.type() === "error") fail(`console error: ${m.text()}`); });
    page.on("pageerror", (e) => fail(`page error: ${e.message}`));
    // Self-contained: the page itself is the only thing it may load.
    await page.route("**/*", (route) => {
      const requested = route.request().url();
      if (requested === url) return route.continue();
      fail(`the page fetched ${requested}`);
      return route.abort();
    });
    const response = await page.goto(url, { waitUntil: "load" });
    if (!response || !response.ok()) fail(`loading ${url} failed`);

    // Every counterexample has one diagram, and it renders: laid out, with its rows drawn.
    const diagrams = await page.$$eval("section.counterexample", (sections) => sections.map((s) => {
      const svgs = s.querySelectorAll("svg.sequence");
      const svg = svgs[0];
      const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
      return {
        id: s.id, svgs: svgs.length, width: box.width, height: box.height,
        texts: svg ? svg.querySelectorAll("text").length : 0,
        broken: svg ? [...svg.querySelectorAll("g.broken text")].map((t) => t.textContent) : [],
        heading: s.querySelector("h3") ? s.querySelector("h3").textContent : "",
        drawn: svg ? svg.getBBox().width : 0,
      };
    }));
    if (diagrams.length === 0) fail("the page has no counterexample");
    for (const d of diagrams) {
      if (d.svgs !== 1) fail(`${d.id}: ${d.svgs} diagrams, expected 1`);
      if (!(d.width > 100 && d.height > 100 && d.drawn > 100)) fail(`${d.id}: the diagram is not laid out (${d.width}x${d.height})`);
      if (d.texts < 5) fail(`${d.id}: the diagram has ${d.texts} labels`);
      const id = d.id.replace(/^cx-.*-(INV-\d+)$/, "$1");
      if (!d.broken.some((t) => t.startsWith(`${id} violated`))) fail(`${d.id}: the diagram does not mark ${id} broken`);
      if (!d.heading.includes(`violates ${id}`)) fail(`${d.id}: its heading is "${d.heading}"`);
    }

    // Every violated cell links to its counterexample, and following the link shows it.
    const cells = await page.$$eval("table.verdicts td.violated", (tds) => tds.map((td) => {
      const a = td.querySelector("a");
      const row = td.parentElement.querySelector("td.policy").textContent;
      const column = td.closest("table").querySelectorAll("thead th")[td.cellIndex].textContent;
      return { href: a ? a.getAttribute("href") : null, row, column };
    }));
    if (cells.length !== diagrams.length) fail(`${cells.length} violated cells, ${diagrams.length} counterexamples`);
    for (const cell of cells) {
      const expected = `#cx-${cell.row}-${cell.column}`;
      if (cell.href !== expected) { fail(`${cell.row} × ${cell.column}: links to ${cell.href}, expected ${expected}`); continue; }
      await page.click(`a[href="${cell.href}"]`);
      const landed = await page.evaluate((href) => {
        const target = document.getElementById(href.slice(1));
        if (!target) return { found: false };
        const top = target.getBoundingClientRect().top;
        return { found: true, hash: location.hash, top, inView: top >= -1 && top < window.innerHeight };
      }, cell.href);
      if (!landed.found) fail(`${cell.href}: no such counterexample`);
      else if (landed.hash !== cell.href || !landed.inView) fail(`${cell.href}: the link did not land on it (hash ${landed.hash}, top ${landed.top})`);
      await page.evaluate(() => window.scrollTo(0, 0));
    }
    await page.goto(url + "#verdicts");
    await page.screenshot({ path: screenshot, fullPage: false });
    if (failures.length === 0) {
      console.log(`report page: ${cells.length} violated cells, each landing on its counterexample; ${diagrams.length} diagrams rendered; no error, nothing fetched`);
    }
  } finally {
    await browser.close();
  }
  if (failures.length > 0) {
    for (const f of failures) console.error(`error: ${f}`);
    process.exit(1);
  }
})().catch((e) => { console.error(`error: ${e.stack || e}`); process.exit(1); });
