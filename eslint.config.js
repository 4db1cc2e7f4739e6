// ESLint over the TypeScript of src, tests and bench (`npm run lint`), with typescript-eslint's
// type-checked recommended rules: the types tsc checks (tsconfig.json covers all three) are what the
// rules read.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'bench/peers/**/node_modules/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A leading underscore is how this code names what it must accept and does not read (a
      // decorated resolver argument that only filters, a callback's unused parameter).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests and benchmarks read the server's JSON answers (GraphQL `data`, REST bodies) as `any`: the
    // assertion (or the benchmark's own check) is what verifies their shape, and typing each answer
    // would restate the schema beside it. Everything else is linted as in src.
    files: ['tests/**/*.ts', 'bench/**/*.ts'],
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
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', fetch: 'readonly' } },
  },
  {
    // The playground check hands functions to the browser (page.evaluate), which run there.
    files: ['scripts/check-playground.mjs'],
    languageOptions: { globals: { document: 'readonly', localStorage: 'readonly' } },
  },
);
