/** ESM + legacy decorators through @swc/jest; every test file gets its own database (tests/support). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
          target: 'es2022',
        },
        module: { type: 'es6' },
      },
    ],
  },
  testMatch: ['<rootDir>/tests/**/*.test.ts'],
  testTimeout: 60_000,
  maxWorkers: 2,
  // Agenda leaves a lock-check timer of lockLifetime/2 after each job (FIELD-NOTES.md); the apps are
  // stopped in afterAll, so nothing but that timer can keep a worker alive.
  forceExit: true,
};
