// Builds a dataset index from an image folder, an annotation list or the synthetic generator.
// Paths in records are relative to the dataset root recorded in dataset.json: the user's folder
// (absolute) for imagefolder/list, "." (= the index directory itself) for synthetic data, so a
// synthetic index does not depend on where the repository is checked out.
import { createHash } from 'node:crypto';
import { readFile, stat, mkdir, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { discoverImageFolder } from './image-folder.js';
import { checkIndexParams, extensionsOf, SPLIT_DEFAULTS, syntheticParams, type IndexParams } from './index-params.js';
import { decodeListText, parseClassesFile, parseList, type ListEntry } from './list-file.js';
import { listingDigest, statAll, type ListedFile } from './listing.js';
import { checkSplits, randomSplit, type Splits } from './splits.js';
import { renderSample, SHAPES, type Box } from './synthetic.js';

export interface IndexRecord {
  id: number;
  /** Relative to the dataset root (dataset.json `root`), forward slashes; absolute if the list said so. */
  path: string;
  label: number;
  class: string;
  /** Bytes (absent for lists indexed with verify: none). */
  size?: number;
  /** Modification time, ms since the epoch (absent for synthetic data and verify: none). */
  mtime?: number;
  sha256?: string;
  /** Synthetic only: mask PNG path (relative like `path`) and tight box of the object. */
  mask?: string;
  box?: Box;
  /** 1-based line in the list file (list source only). */
  line?: number;
}

export interface IndexProgress {
  total(n: number, unit?: string): void;
  tick(n?: number): void;
  message(text: string): void;
}

export interface BuildOptions {
  baseDir: string;
  /** Where synthetic images are written (the index output directory). */
  outDir: string;
  progress?: IndexProgress;
  signal?: AbortSignal;
  /**
   * Content hashes from an earlier listing of the same dataset: a file whose path, size and
   * mtime are unchanged is not read again under verify: content (the same trust the key places
   * in the listing).
   */
  knownFiles?: readonly ListedFile[];
}

export interface BuiltIndex {
  source: IndexParams['source'];
  /** Absolute dataset root, or "." for data stored inside the index directory. */
  root: string;
  records: IndexRecord[];
  classes: string[];
  splits: Splits;
  /** The (path, size, mtime) listing behind the external digest; null when not statted. */
  listing: ListedFile[] | null;
  listingDigest: string | null;
  /** Files found but not indexed (e.g. images lying directly in an imagefolder root). */
  ignored: string[];
  /** Synthetic only. */
  imageSize?: number;
  /** verify: content — files read and hashed now, and hashes reused from knownFiles. */
  hashed?: { read: number; reused: number };
}

const noProgress: IndexProgress = { total() {}, tick() {}, message() {} };

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function readUserFile(abs: string, what: string): Promise<Buffer> {
  try {
    return await readFile(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${what} ${abs} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(e as Error).message}`}`);
  }
}

async function requireDir(abs: string, what: string): Promise<void> {
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new Error(`${what} ${abs} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`${what} ${abs} is not a directory`);
}

function listRoot(p: IndexParams, baseDir: string, fileAbs: string): string {
  return p.root ? resolve(baseDir, p.root) : dirname(fileAbs);
}

const resolveItem = (root: string, rel: string): string => (isAbsolute(rel) ? rel : join(root, rel));

/**
 * The part of the cache key that comes from outside the params: the listing digest (path, size,
 * mtime — never image bytes) and the hashes of the list, classes and split files.
 */
export async function computeExternalDigest(p: IndexParams, baseDir: string): Promise<Record<string, string>> {
  checkIndexParams(p);
  const out: Record<string, string> = {};
  if (p.split?.indices) out.split_indices = sha256(await readUserFile(resolve(baseDir, p.split.indices), 'split indices file'));
  if (p.source === 'imagefolder') {
    const found = await discoverImageFolder(resolve(baseDir, p.root!), extensionsOf(p));
    const files = limitList(found.files, p.limit);
    out.listing = listingDigest(files);
    rememberShape(p, baseDir, { classes: found.classes.length, classNames: found.classes, count: files.length });
  } else if (p.source === 'list') {
    const fileAbs = resolve(baseDir, p.file!);
    const text = await readUserFile(fileAbs, 'list file');
    out.list_file = sha256(text);
    if (p.classes) out.classes_file = sha256(await readUserFile(resolve(baseDir, p.classes), 'classes file'));
    if ((p.verify ?? 'stat') !== 'none') {
      const root = listRoot(p, baseDir, fileAbs);
      await requireDir(root, 'list root');
      const parsed = parseList(decodeListText(text, fileAbs), { format: p.format ?? 'auto', header: p.header ?? 'auto', source: fileAbs });
      const entries = limitList(parsed.entries, p.limit);
      // Labels are checked now too (it costs nothing beside the stats): a bad one stops the plan.
      rememberShape(p, baseDir, await listShape(p, baseDir, parsed, entries, fileAbs));
      const files = await statAll(
        root,
        entries.map((e) => e.path),
        resolveItem,
        (i) => `${fileAbs}:${entries[i]!.line}`,
      );
      out.listing = listingDigest(files);
    }
  }
  return out;
}

/** What an index will hold, known before it is built: what a consuming stage checks at plan time. */
export interface IndexFacts {
  classes: number;
  /** Class names when cheap to know (a one-class dataset is named in the error). */
  classNames?: string[];
  train: number;
  val: number;
}

interface IndexShape {
  classes: number;
  classNames?: string[];
  count: number;
}

/** Shapes seen by computeExternalDigest in this process, so planning does not list a large folder twice. */
const shapesSeen = new Map<string, IndexShape>();
const shapeKey = (p: IndexParams, baseDir: string): string => JSON.stringify([baseDir, p]);

function rememberShape(p: IndexParams, baseDir: string, shape: IndexShape): void {
  shapesSeen.set(shapeKey(p, baseDir), shape);
}

async function indexShape(p: IndexParams, baseDir: string): Promise<IndexShape> {
  const seen = shapesSeen.get(shapeKey(p, baseDir));
  if (seen) return seen;
  if (p.source === 'synthetic') {
    const s = syntheticParams(p);
    const count = s.classes * s.per_class;
    return {
      classes: s.classes,
      classNames: SHAPES.slice(0, s.classes) as string[],
      count: p.limit !== undefined ? Math.min(count, p.limit) : count,
    };
  }
  if (p.source === 'imagefolder') {
    const found = await discoverImageFolder(resolve(baseDir, p.root!), extensionsOf(p));
    return { classes: found.classes.length, classNames: found.classes, count: limitList(found.files, p.limit).length };
  }
  const fileAbs = resolve(baseDir, p.file!);
  const text = decodeListText(await readUserFile(fileAbs, 'list file'), fileAbs);
  const parsed = parseList(text, { format: p.format ?? 'auto', header: p.header ?? 'auto', source: fileAbs });
  return listShape(p, baseDir, parsed, limitList(parsed.entries, p.limit), fileAbs);
}

async function listShape(
  p: IndexParams,
  baseDir: string,
  parsed: ReturnType<typeof parseList>,
  entries: ListEntry[],
  fileAbs: string,
): Promise<IndexShape> {
  let given: string[] | null = null;
  if (p.classes) {
    const cf = resolve(baseDir, p.classes);
    given = parseClassesFile((await readUserFile(cf, 'classes file')).toString('utf8'), cf);
  }
  const { classes } = parsed.hasLabels ? labelledClasses(entries, given, p.num_classes, fileAbs) : inferredClasses(entries, given, fileAbs);
  return { classes: classes.length, classNames: classes, count: entries.length };
}

/**
 * Class count and split sizes of the index `p` describes, without building it (reads the split
 * file if any). Undefined for a list under `verify: none`: parsing a list of a million lines would
 * cost seconds on every plan, and that setting asks to trust the list until the index is built.
 */
export async function indexFacts(p: IndexParams, baseDir: string): Promise<IndexFacts | undefined> {
  checkIndexParams(p);
  if (p.source === 'list' && p.verify === 'none') return undefined;
  const shape = await indexShape(p, baseDir);
  let val: number;
  if (p.split?.indices) {
    const file = resolve(baseDir, p.split.indices);
    const text = (await readUserFile(file, 'split indices file')).toString('utf8');
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new Error(`split indices file ${file}: invalid JSON: ${(e as Error).message}`);
    }
    val = checkSplits(data, shape.count, file).val.length;
  } else {
    val = Math.floor(shape.count * (p.split?.fraction ?? SPLIT_DEFAULTS.fraction));
  }
  return { classes: shape.classes, classNames: shape.classNames, train: shape.count - val, val };
}

function limitList<T>(items: T[], limit: number | undefined): T[] {
  return limit !== undefined && items.length > limit ? items.slice(0, limit) : items;
}

/** Builds the index; writes synthetic images and masks under opts.outDir. */
export async function buildIndex(p: IndexParams, opts: BuildOptions): Promise<BuiltIndex> {
  checkIndexParams(p);
  const progress = opts.progress ?? noProgress;
  let built: Omit<BuiltIndex, 'splits'>;
  if (p.source === 'imagefolder') built = await fromImageFolder(p, opts, progress);
  else if (p.source === 'list') built = await fromList(p, opts, progress);
  else built = await fromSynthetic(p, opts, progress);

  if ((p.verify ?? 'stat') === 'content' && p.source !== 'synthetic') {
    progress.message('hashing file contents');
    progress.total(built.records.length, 'file');
    const known = new Map((opts.knownFiles ?? []).filter((f) => f.sha256).map((f) => [f.path, f]));
    const hashed = { read: 0, reused: 0 };
    for (const r of built.records) {
      opts.signal?.throwIfAborted();
      const k = known.get(r.path);
      if (k && r.size !== undefined && k.size === r.size && k.mtimeMs === r.mtime) {
        r.sha256 = k.sha256!;
        hashed.reused++;
      } else {
        const abs = resolveItem(built.root, r.path);
        r.sha256 = sha256(await readUserFile(abs, r.line !== undefined ? `${p.file}:${r.line}: image` : 'image'));
        hashed.read++;
      }
      progress.tick();
    }
    built.hashed = hashed;
    if (built.listing) {
      const byPath = new Map(built.records.map((r) => [r.path, r.sha256]));
      for (const f of built.listing) f.sha256 = byPath.get(f.path);
    }
  }

  let splits: Splits;
  if (p.split?.indices) {
    const file = resolve(opts.baseDir, p.split.indices);
    const text = (await readUserFile(file, 'split indices file')).toString('utf8');
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new Error(`split indices file ${file}: invalid JSON: ${(e as Error).message}`);
    }
    splits = checkSplits(data, built.records.length, file);
  } else {
    splits = randomSplit(built.records.length, p.split?.fraction ?? SPLIT_DEFAULTS.fraction, p.split?.seed ?? SPLIT_DEFAULTS.seed);
  }
  return { ...built, splits };
}

async function fromImageFolder(p: IndexParams, opts: BuildOptions, progress: IndexProgress): Promise<Omit<BuiltIndex, 'splits'>> {
  const root = resolve(opts.baseDir, p.root!);
  progress.message(`listing ${root}`);
  const found = await discoverImageFolder(root, extensionsOf(p));
  const files = limitList(found.files, p.limit);
  const records: IndexRecord[] = files.map((f, id) => ({
    id,
    path: f.path,
    label: f.label,
    class: found.classes[f.label]!,
    size: f.size,
    mtime: f.mtimeMs,
  }));
  const listing = files.map(({ path, size, mtimeMs }) => ({ path, size, mtimeMs }));
  return {
    source: 'imagefolder',
    root,
    records,
    classes: found.classes,
    listing,
    listingDigest: listingDigest(listing),
    ignored: found.ignored,
  };
}

async function fromList(p: IndexParams, opts: BuildOptions, progress: IndexProgress): Promise<Omit<BuiltIndex, 'splits'>> {
  const fileAbs = resolve(opts.baseDir, p.file!);
  const text = decodeListText(await readUserFile(fileAbs, 'list file'), fileAbs);
  const root = listRoot(p, opts.baseDir, fileAbs);
  await requireDir(root, 'list root');
  const parsed = parseList(text, { format: p.format ?? 'auto', header: p.header ?? 'auto', source: fileAbs });
  const entries = limitList(parsed.entries, p.limit);
  if (entries.length === 0) throw new Error(`list file ${fileAbs} has no entries`);

  let given: string[] | null = null;
  if (p.classes) {
    const cf = resolve(opts.baseDir, p.classes);
    given = parseClassesFile((await readUserFile(cf, 'classes file')).toString('utf8'), cf);
    if (p.num_classes !== undefined && p.num_classes !== given.length) {
      throw new Error(`index params: num_classes = ${p.num_classes} but classes file ${cf} lists ${given.length} classes`);
    }
  }
  const { labels, classes } = parsed.hasLabels
    ? labelledClasses(entries, given, p.num_classes, fileAbs)
    : inferredClasses(entries, given, fileAbs);

  let listing: ListedFile[] | null = null;
  if ((p.verify ?? 'stat') !== 'none') {
    progress.message(`checking ${entries.length} files under ${root}`);
    progress.total(entries.length, 'file');
    listing = await statAll(
      root,
      entries.map((e) => e.path),
      resolveItem,
      (i) => `${fileAbs}:${entries[i]!.line}`,
      (n) => progress.tick(n),
    );
  }
  const records: IndexRecord[] = entries.map((e, id) => {
    const r: IndexRecord = { id, path: e.path, label: labels[id]!, class: classes[labels[id]!]!, line: e.line };
    if (listing) {
      r.size = listing[id]!.size;
      r.mtime = listing[id]!.mtimeMs;
    }
    return r;
  });
  return { source: 'list', root, records, classes, listing, listingDigest: listing ? listingDigest(listing) : null, ignored: [] };
}

/** First path component, or null for a path directly in the root. */
function classDir(path: string): string | null {
  const norm = path.replace(/\\/g, '/');
  const cut = norm.indexOf('/');
  return cut > 0 ? norm.slice(0, cut) : null;
}

function labelledClasses(
  entries: ListEntry[],
  given: string[] | null,
  numClasses: number | undefined,
  source: string,
): { labels: number[]; classes: string[] } {
  const limit = given?.length ?? numClasses;
  let maxLabel = -1;
  for (const e of entries) {
    const l = e.label!;
    if (l < 0 || (limit !== undefined && l >= limit)) {
      throw new Error(
        `${source}:${e.line}: label ${l} out of range [0, ${limit ?? '∞'})${given ? ' (classes file)' : numClasses !== undefined ? ' (num_classes)' : ''}`,
      );
    }
    if (l > maxLabel) maxLabel = l;
  }
  const n = limit ?? maxLabel + 1;
  if (given) return { labels: entries.map((e) => e.label!), classes: given };
  // Names come from the class folders when folders and labels correspond one-to-one (MIT-67);
  // otherwise (flat ImageNet val list, mixed folders) labels get neutral names.
  const dirOf = new Map<number, string>();
  const labelOf = new Map<string, number>();
  let consistent = true;
  for (const e of entries) {
    const d = classDir(e.path);
    if (d === null) {
      consistent = false;
      break;
    }
    const l = e.label!;
    if ((dirOf.has(l) && dirOf.get(l) !== d) || (labelOf.has(d) && labelOf.get(d) !== l)) {
      consistent = false;
      break;
    }
    dirOf.set(l, d);
    labelOf.set(d, l);
  }
  const classes = Array.from({ length: n }, (_, i) => (consistent && dirOf.get(i)) || `class_${i}`);
  return { labels: entries.map((e) => e.label!), classes };
}

function inferredClasses(entries: ListEntry[], given: string[] | null, source: string): { labels: number[]; classes: string[] } {
  const dirs = entries.map((e) => {
    const d = classDir(e.path);
    if (d === null)
      throw new Error(
        `${source}:${e.line}: no label and no class folder in ${JSON.stringify(e.path)} (expected "<class_dir>/<file>" or "<path>,<label>")`,
      );
    return d;
  });
  const classes = given ?? [...new Set(dirs)].sort();
  const index = new Map(classes.map((c, i) => [c, i]));
  const labels = dirs.map((d, i) => {
    const l = index.get(d);
    if (l === undefined) throw new Error(`${source}:${entries[i]!.line}: class folder ${JSON.stringify(d)} is not in the classes file`);
    return l;
  });
  return { labels, classes };
}

async function fromSynthetic(p: IndexParams, opts: BuildOptions, progress: IndexProgress): Promise<Omit<BuiltIndex, 'splits'>> {
  const s = syntheticParams(p);
  const { encodePng } = await import('../io/image.js');
  const classes = SHAPES.slice(0, s.classes) as string[];
  for (const c of classes) {
    await mkdir(join(opts.outDir, 'images', c), { recursive: true });
    await mkdir(join(opts.outDir, 'masks', c), { recursive: true });
  }
  let total = s.classes * s.per_class;
  if (p.limit !== undefined) total = Math.min(total, p.limit);
  progress.message(`rendering ${total} synthetic ${s.size}×${s.size} images`);
  progress.total(total, 'img');
  const records: IndexRecord[] = new Array(total);
  let next = 0;
  // Rendering is synchronous JS, PNG encoding runs on libuv threads: overlap the two.
  const worker = async (): Promise<void> => {
    for (;;) {
      const id = next++;
      if (id >= total) return;
      opts.signal?.throwIfAborted();
      const label = Math.floor(id / s.per_class);
      const index = id % s.per_class;
      const sample = renderSample(s.seed, label, index, s.size, { clutter: s.clutter });
      const name = `${String(id).padStart(6, '0')}.png`;
      const path = `images/${classes[label]}/${name}`;
      const mask = `masks/${classes[label]}/${name}`;
      const [img, m] = await Promise.all([encodePng(sample.rgb, s.size, s.size, 3), encodePng(sample.mask, s.size, s.size, 1)]);
      await Promise.all([writeFile(join(opts.outDir, path), img), writeFile(join(opts.outDir, mask), m)]);
      records[id] = { id, path, label, class: classes[label]!, size: img.length, sha256: sha256(img), mask, box: sample.box };
      progress.tick();
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return { source: 'synthetic', root: '.', records, classes, listing: null, listingDigest: null, ignored: [], imageSize: s.size };
}
