import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { commandStage, inputEnvName, substituteTokens } from '../../stages/command/index.js';
import { runFile, tempDir, testRegistry, writeExp } from './helpers.js';

const node = JSON.stringify(process.execPath);

test('token substitution and input env names', () => {
  const ctx = { inputs: { 'up-1': '/s/up' }, variantInputs: {}, outDir: '/o', scratchDir: '/sc', baseDir: '/b' };
  assert.equal(substituteTokens('--in={in.up-1}/x', ctx), '--in=/s/up/x');
  assert.equal(substituteTokens('{out}/a:{scratch}:{base}', ctx), '/o/a:/sc:/b');
  assert.equal(substituteTokens('{other}', ctx), '{other}');
  assert.throws(() => substituteTokens('{in.nope}', ctx), /\{in\.nope\} names no input \(inputs: up-1\)/);
  assert.equal(inputEnvName('up-1'), 'CA_PIPE_IN_UP_1');
});

test('a command sees its inputs and output dir through env and tokens, argv is not shell-expanded', async (t) => {
  const dir = await tempDir(t);
  const file = await writeExp(
    dir,
    'c.yaml',
    `name: cmd
stages:
  up:
    kind: command
    params: { cmd: [sh, -c, 'printf upstream > "$CA_PIPE_OUT/u.txt"'], outs: [u.txt] }
  down:
    kind: command
    needs: { src: up }
    params:
      cmd: [${node}, -e, 'const fs=require("fs");fs.writeFileSync(process.env.CA_PIPE_OUT+"/r.json",JSON.stringify({env:process.env.CA_PIPE_IN_SRC,tok:process.argv[1],lit:process.argv[2],mine:process.env.MINE,u:fs.readFileSync(process.argv[1]+"/u.txt","utf8")}))', '{in.src}', '$HOME;*']
      env: { MINE: yes }
      outs: [r.json]
`,
  );
  const r = await runFile(dir, file, testRegistry());
  assert.equal(r.status, 'succeeded', JSON.stringify(r.failures));
  const down = r.record.instances.find((i) => i.id === 'down')!;
  const up = r.record.instances.find((i) => i.id === 'up')!;
  const res = JSON.parse(await readFile(join(dir, 'runs', '.store', 'entries', down.key!, 'out', 'r.json'), 'utf8'));
  const upDir = join(dir, 'runs', '.store', 'entries', up.key!, 'out');
  assert.deepEqual(res, { env: upDir, tok: upDir, lit: '$HOME;*', mine: 'yes', u: 'upstream' });
});

test('non-zero exit fails with the tail of the output; a missing declared out fails', async (t) => {
  const dir = await tempDir(t);
  const file = await writeExp(
    dir,
    'f.yaml',
    `name: fails
stages:
  boom: { kind: command, params: { cmd: [sh, -c, 'echo first; echo "it went boom" >&2; exit 3'] } }
  lazy: { kind: command, params: { cmd: ['true'], outs: [promised.txt] } }
`,
  );
  const r = await runFile(dir, file, testRegistry(), [], { keepGoing: true });
  assert.equal(r.status, 'failed');
  const boom = r.failures.find((f) => f.id === 'boom')!;
  assert.match(boom.error, /exited with code 3/);
  assert.match(boom.error, /it went boom/);
  assert.match(await readFile(boom.log!, 'utf8'), /it went boom/);
  const lazy = r.failures.find((f) => f.id === 'lazy')!;
  assert.match(lazy.error, /did not produce its declared outs: promised\.txt/);
  assert.deepEqual(r.record.instances.map((i) => i.status).sort(), ['failed', 'failed']);
});

test('deps enter the key by content (not by mtime)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'in.txt'), 'v1');
  const p = { cmd: ['true'], deps: ['in.txt'] };
  const d1 = await commandStage.externalDigest!(p, dir);
  const later = new Date(Date.now() + 60_000);
  await utimes(join(dir, 'in.txt'), later, later);
  assert.deepEqual(await commandStage.externalDigest!(p, dir), d1, 'touching does not change the key');
  await writeFile(join(dir, 'in.txt'), 'v2');
  assert.notDeepEqual(await commandStage.externalDigest!(p, dir), d1);
  await assert.rejects(commandStage.externalDigest!({ cmd: ['true'], deps: ['missing'] }, dir), /missing does not exist/);
});
