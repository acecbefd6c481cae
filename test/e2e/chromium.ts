// Headless Chromium as a plain command-line tool (no npm dependency): load a local HTML file, get
// the DOM after scripts ran, the console messages the page produced, and a screenshot.
// Not a test file itself.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const CANDIDATES = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);

/** The Chromium binary, or undefined when none is installed. */
export function findChromium(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

export const INSTALL_HINT =
  'headless Chromium is required for the report browser test: install it with `apt-get update && apt-get install -y --no-install-recommends chromium` ' +
  '(as root; .ci/run does this), or point CHROMIUM at a Chromium binary';

export interface PageLoad {
  /** Serialised DOM after load (and after the page's scripts ran). */
  dom: string;
  /** Every console message of the page ("message" @ source), uncaught exceptions and failed loads included. */
  console: string[];
  stderr: string;
}

// Network and background services off: the report must render from the file alone.
const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--hide-scrollbars',
  '--mute-audio',
];

function runChromium(binary: string, extra: string[], file: string): { stdout: string; stderr: string } {
  const profile = mkdtempSync(join(tmpdir(), 'ca-pipe-chromium-'));
  try {
    const r = spawnSync(binary, [...BASE_FLAGS, `--user-data-dir=${profile}`, ...extra, pathToFileURL(file).href], {
      encoding: 'utf8',
      timeout: 90_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.error) throw new Error(`chromium (${binary}) failed to run: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`chromium (${binary}) exited with ${r.status ?? r.signal}:\n${r.stderr.slice(-2000)}`);
    return { stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Chromium's stderr log carries one line per console message, e.g.
 *   [1:1:1126/100540.801070:INFO:CONSOLE:1] "Uncaught ReferenceError: f is not defined", source: file:///x.html (1)
 * (older builds write CONSOLE(1)). The level is not printed for file pages, so every message counts.
 */
export function consoleMessages(stderr: string): string[] {
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /:CONSOLE[^\]]*\]\s*(.*)$/.exec(line);
    if (m) out.push(m[1]!.trim());
  }
  return out;
}

/** Load a page, let it settle (virtual time), and return its DOM and console messages. */
export function loadPage(binary: string, file: string): PageLoad {
  const { stdout, stderr } = runChromium(binary, ['--enable-logging=stderr', '--v=0', '--virtual-time-budget=5000', '--dump-dom'], file);
  return { dom: stdout, console: consoleMessages(stderr), stderr };
}

export function screenshot(binary: string, file: string, png: string, width = 1280, height = 2000): void {
  runChromium(binary, [`--screenshot=${png}`, `--window-size=${width},${height}`, '--virtual-time-budget=5000'], file);
  if (!existsSync(png)) throw new Error(`chromium wrote no screenshot at ${png}`);
}

/**
 * Layout facts only a browser knows, gathered by a probe script appended to a COPY of the page:
 * images that failed to decode, and the rendered size of elements. The original file is untouched.
 */
export interface Probe {
  images: number;
  brokenImages: number;
  /** selector → [width, height] of its first match's bounding box (absent: no match). */
  boxes: Record<string, [number, number]>;
  /** selector → number of matches. */
  counts: Record<string, number>;
}

export function probePage(binary: string, file: string, selectors: string[]): Probe {
  const copy = join(mkdtempSync(join(tmpdir(), 'ca-pipe-probe-')), 'probed.html');
  const html = readFileSync(file, 'utf8');
  const script = `<script>addEventListener('load', () => {
    const sel = ${JSON.stringify(selectors)};
    const imgs = [...document.images];
    const r = { images: imgs.length, brokenImages: imgs.filter((i) => !i.complete || i.naturalWidth === 0).length, boxes: {}, counts: {} };
    for (const s of sel) {
      const all = document.querySelectorAll(s);
      r.counts[s] = all.length;
      if (all.length) { const b = all[0].getBoundingClientRect(); r.boxes[s] = [b.width, b.height]; }
    }
    const pre = document.createElement('pre');
    pre.id = 'ca-pipe-probe';
    pre.textContent = JSON.stringify(r);
    document.body.appendChild(pre);
  });</script>`;
  writeFileSync(copy, html.includes('</body>') ? html.replace(/<\/body>(?![\s\S]*<\/body>)/, `${script}</body>`) : html + script);
  try {
    const { dom } = loadPage(binary, copy);
    const m = /<pre id="ca-pipe-probe">([\s\S]*?)<\/pre>/.exec(dom);
    if (!m) throw new Error('the probe script did not run (no #ca-pipe-probe in the dumped DOM)');
    return JSON.parse(
      m[1]!
        .replace(/&quot;/g, '"')
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&amp;/g, '&'),
    ) as Probe;
  } finally {
    rmSync(join(copy, '..'), { recursive: true, force: true });
  }
}
