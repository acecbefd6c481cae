// The report opens in a real browser: headless Chromium loads report.html from disk with the
// network off, the page logs nothing to the console, the metrics table, both chart groups and the
// gallery are rendered (non-empty boxes, decoded images), and a screenshot is written.
// Chromium is a system package (Debian `chromium`, installed by .ci/run); without it this test
// FAILS with instructions rather than skipping, so a missing browser cannot pass unnoticed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { reportStage } from '../../stages/report/index.js';
import { reportCtx, writeReportInputs } from '../fixtures-gen/report-inputs.js';
import { findChromium, INSTALL_HINT, loadPage, probePage, screenshot } from './chromium.js';

// Markup in user-controlled strings: if the report failed to escape it, the browser would create
// an <img> whose load fails and whose onerror logs to the console — both caught below.
const HOSTILE = `<img src="nowhere.png" onerror="console.error('unescaped markup ran')">`;

function chromiumOrFail(): string {
  const bin = findChromium();
  if (!bin) assert.fail(INSTALL_HINT);
  return bin;
}

test('the harness sees console errors, broken images and missing elements (negative control)', () => {
  const bin = chromiumOrFail();
  const dir = mkdtempSync(join(tmpdir(), 'ca-pipe-browser-neg-'));
  const file = join(dir, 'bad.html');
  writeFileSync(
    file,
    `<!doctype html><html><body><div id="metrics-table"></div><img src="missing.png"><p>${HOSTILE}</p><script>console.error('boom');</script></body></html>`,
  );
  const page = loadPage(bin, file);
  assert.ok(
    page.console.some((m) => m.includes('boom')),
    `console.error not captured: ${JSON.stringify(page.console)}`,
  );
  assert.ok(
    page.console.some((m) => m.includes('unescaped markup ran')),
    'an onerror handler logging is captured',
  );
  const probe = probePage(bin, file, ['#metrics-table', '#gallery img', 'img[onerror]']);
  assert.equal(probe.images, 2);
  assert.equal(probe.brokenImages, 2);
  assert.equal(probe.counts['img[onerror]'], 1);
  assert.equal(probe.counts['#gallery img'], 0);
});

test('report.html renders in headless Chromium without console messages; tables, curves and gallery present', async () => {
  const bin = chromiumOrFail();
  const root = mkdtempSync(join(tmpdir(), 'ca-pipe-browser-'));
  const inputs = await writeReportInputs(root, { images: 8 });
  const ctx = reportCtx(root, inputs, { title: `browser test ${HOSTILE}`, gallery_images: 5 }, `exp${HOSTILE}`);
  await reportStage.run(ctx);
  const html = join(ctx.outDir, 'report.html');

  const page = loadPage(bin, html);
  assert.deepEqual(page.console, [], `the report logged to the browser console:\n${page.console.join('\n')}`);
  assert.match(page.dom, /<table[^>]*>/);
  assert.ok(page.dom.includes('&lt;img src="nowhere.png"'), 'hostile markup is shown as text');

  const hostile = probePage(bin, html, ['img[onerror]', 'img[src="nowhere.png"]']);
  assert.equal(hostile.counts['img[onerror]'], 0, 'hostile markup in the title or config became an element');
  assert.equal(hostile.counts['img[src="nowhere.png"]'], 0);

  const sel = [
    '#metrics-table',
    '#metrics-table table',
    '#training-curves svg',
    '#training-curves svg path',
    '#insdel-curves svg',
    '#insdel-curves svg path',
    '#gallery',
    '#gallery img',
    // The baseline-adjusted comparison: its explanation and at least one verdict sentence.
    '#adjusted-comparison p',
  ];
  const probe = probePage(bin, html, sel);
  assert.equal(probe.brokenImages, 0, `${probe.brokenImages} of ${probe.images} images did not decode`);
  for (const s of sel) assert.ok((probe.counts[s] ?? 0) > 0, `${s} missing from the rendered page`);
  for (const s of ['#metrics-table table', '#training-curves svg', '#insdel-curves svg', '#gallery img']) {
    const [w, h] = probe.boxes[s]!;
    assert.ok(w > 20 && h > 20, `${s} rendered at ${w}×${h}`);
  }
  // Three training charts (loss, val loss, val acc) with one line per model; two ins/del charts
  // with one line per (pooling, method).
  assert.equal(probe.counts['#training-curves svg'], 3);
  assert.equal(probe.counts['#training-curves svg path'], 3 * 2);
  const columns = inputs.methods.gap.length + inputs.methods.ca.length;
  assert.equal(probe.counts['#insdel-curves svg path'], 2 * columns);
  assert.equal(probe.counts['#gallery img'], 5 * columns, 'gallery: 5 images × every (pooling, method) column');
  assert.ok(probe.counts['#adjusted-comparison p']! >= 2, 'the adjusted comparison is explained and its verdict given');

  // Screenshot where a person can look at it: runs/ when run from the repo, else the temp dir.
  const shots =
    process.env.CA_PIPE_SCREENSHOT_DIR ?? (statSafe(resolve('runs')) ? resolve('runs', 'screenshots') : join(root, 'screenshots'));
  mkdirSync(shots, { recursive: true });
  const png = join(shots, 'report-browser-test.png');
  screenshot(bin, html, png);
  const buf = readFileSync(png);
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG');
  assert.equal(buf.readUInt32BE(16), 1280, 'screenshot width');
  assert.ok(buf.length > 20_000, `screenshot of ${buf.length} bytes looks blank`);
  console.log(`# report screenshot: ${png}`);
});

function statSafe(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
