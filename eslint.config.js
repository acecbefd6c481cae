// ESLint (flat config): typescript-eslint's type-checked rules on the TypeScript sources, the plain
// recommended rules on the few JavaScript entry points. Formatting is prettier's job, not ESLint's:
// no stylistic rules here, so the two never disagree.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { fileURLToPath } from 'node:url';

// import.meta.dirname needs Node 20.11; the package supports 20.9.
const root = fileURLToPath(new URL('.', import.meta.url));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'runs/', 'test/fixtures/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    rules: {
      // An un-awaited promise is a lost error or a race: the engine's lock, commit and journal code
      // depends on every write being awaited.
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // Unused names are the compiler's job (noUnusedLocals / noUnusedParameters), with `_` as the
      // marker for a parameter a callback signature forces on us.
      '@typescript-eslint/no-unused-vars': 'off',
      // The `!` on indexed reads mark exactly the sites noUncheckedIndexedAccess would flag; they
      // cost nothing and keep that option within reach.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // no-base-to-string already catches the one real hazard ('[object Object]'); arrays, shapes
      // and unknown config values print as intended in our error messages.
      '@typescript-eslint/restrict-template-expressions': 'off',
      // Mocks and interface implementations return promises without awaiting anything.
      '@typescript-eslint/require-await': 'off',
      'prefer-const': ['error', { destructuring: 'all' }],
      // Data that arrives untyped (JSON files, tfjs kernel attributes) still flows through `any`
      // in places: reported, not yet fatal. Tighten to 'error' once the count reaches zero.
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-unsafe-argument': 'warn',
      '@typescript-eslint/no-unsafe-assignment': 'warn',
      '@typescript-eslint/no-unsafe-call': 'warn',
      '@typescript-eslint/no-unsafe-member-access': 'warn',
      '@typescript-eslint/no-unsafe-return': 'warn',
    },
  },
  {
    // Tests and benchmarks read back JSON outputs and poke at internals by design; tfjs types its
    // kernel-registration API (attrs, saved tensors) as `any`.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'ml/backend/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
);
