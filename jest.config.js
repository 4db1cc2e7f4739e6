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
  // Every handle a test file opens is closed in its afterAll (apps, databases, the payment sandbox,
  // Agenda's liveness timers waited out: tests/support/harness.ts). One is out of reach: Agenda
  // 6.2.6 arms a timer for a job due within the next scan (JOB_PROCESS_EVERY_SECONDS, 1 s in tests)
  // and keeps it nowhere; stop() cannot clear it (agenda#1786; its fix, PR #1791, is not in 6.2.6). A worker whose
  // last file left one exits by itself when it fires, instead of being killed after Jest's 500 ms;
  // a real leak still reports "A worker process has failed to exit gracefully".
  workerGracefulExitTimeout: 3_000,
};
