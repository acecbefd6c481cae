// `ca-pipe schemas [--write | --check]` (hidden): keeps schemas/stages/<kind>.schema.json equal to
// each registered kind's paramsSchema, so editors can validate experiment files without running
// code. Stage authors run `ca-pipe schemas --write` after editing a kind's TypeScript schema.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { StageKind } from '../engine/contract.js';
import { action, loadRegistry } from './common.js';

/** The package's schemas/stages directory (from the sources or from dist/). */
export function stageSchemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schemas'))) return join(dir, 'schemas', 'stages');
    dir = dirname(dir);
  }
  throw new Error('ca-pipe: cannot find the schemas/ directory of the package');
}

/** The file text for a kind: its params schema as pretty JSON. */
export function schemaFileText(kind: StageKind): string {
  return JSON.stringify(kind.paramsSchema, null, 2) + '\n';
}

export interface SchemaSync {
  /** Files whose content differs from (or is missing for) a registered kind. */
  stale: string[];
  upToDate: string[];
}

/** Compares (and with `write`, rewrites atomically) schemas/stages/<kind>.schema.json for each kind. */
export async function syncStageSchemas(kinds: StageKind[], dir: string, write: boolean): Promise<SchemaSync> {
  const out: SchemaSync = { stale: [], upToDate: [] };
  if (write) await mkdir(dir, { recursive: true });
  for (const kind of [...kinds].sort((a, b) => a.kind.localeCompare(b.kind))) {
    const file = join(dir, `${kind.kind}.schema.json`);
    const text = schemaFileText(kind);
    const current = await readFile(file, 'utf8').catch(() => undefined);
    if (current === text) {
      out.upToDate.push(file);
      continue;
    }
    out.stale.push(file);
    if (write) {
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, file);
    }
  }
  return out;
}

export function schemasCommand(): Command {
  return new Command('schemas')
    .description('(maintainers) compare or regenerate schemas/stages/<kind>.schema.json from the registered stage kinds')
    .option('--write', 'rewrite the files that differ')
    .option('--check', 'exit 1 when a file differs (for CI)')
    .addHelpText(
      'after',
      "\nExamples:\n  $ ca-pipe schemas            # list files that differ\n  $ ca-pipe schemas --write    # regenerate them after editing a kind's schema",
    )
    .action(
      action(async (opts: { write?: boolean; check?: boolean }) => {
        const registry = await loadRegistry();
        const kinds = registry.kinds().map((k) => registry.get(k)!);
        const dir = stageSchemasDir();
        const r = await syncStageSchemas(kinds, dir, !!opts.write);
        const verb = opts.write ? 'wrote' : 'differs';
        for (const f of r.stale) process.stdout.write(`${verb}: ${f}\n`);
        process.stdout.write(`${r.upToDate.length} up to date, ${r.stale.length} ${opts.write ? 'rewritten' : 'differ'} (${dir})\n`);
        if (opts.check && r.stale.length && !opts.write) process.exitCode = 1;
      }),
    );
}
