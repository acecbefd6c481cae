#!/usr/bin/env node
// The CLI ships compiled (npm ci runs `prepare`, which builds dist/); see README.
await import('../dist/cli/main.js');
