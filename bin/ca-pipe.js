#!/usr/bin/env node
// The CLI ships compiled (npm ci runs `prepare`, which builds dist/); see README.
const main = new URL('../dist/cli/main.js', import.meta.url);
try {
  await import(main.href);
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(main.pathname)) {
    console.error('ca-pipe: the CLI is not built yet (dist/cli/main.js is missing): run `npm run build` first');
    process.exit(1);
  }
  throw e;
}
