// `npm run docs:bad-inputs`: runs every bad-input case and rewrites docs/bad-inputs.md from the
// real answers. Refuses to write when a case no longer gives its expected exit code, so the
// document never records a regression as the answer. (Kept out of test/: node --test runs every
// module under a test directory, and this one writes a file.)
import { writeFile } from 'node:fs/promises';

const { DOC_FILE, loadCases, renderDoc, runCases } = await import('../dist/test/bad-inputs/catalogue.js');
const cases = await loadCases();
const answers = await runCases(cases);
const wrong = cases.filter((c, i) => answers[i].exitCode !== c.exitCode);
if (wrong.length) {
  for (const c of wrong) process.stderr.write(`${c.id}: exit code ${answers[cases.indexOf(c)].exitCode}, expected ${c.exitCode}\n`);
  process.exitCode = 1;
} else {
  await writeFile(DOC_FILE, renderDoc(cases, answers));
  process.stdout.write(`wrote ${DOC_FILE} (${cases.length} cases)\n`);
}
