import { Writable } from 'node:stream';
import { ConfigError, LOG_LEVELS, loadConfig } from '../../src/config.js';
import { createLogger, wantsPrettyLogs } from '../../src/logger.js';
import { requestScope } from '../../src/request-scope.js';
import { sleep } from '../support/wait.js';

/** A logger writing into an array, as the server's own (instance on every line, the request id while in a request). */
function capture(level = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, log: createLogger({ level, instance: 'web-7', destination, redact: (l) => l.replace('hunter2', '***') }) };
}

/** A later turn of the event loop, through a timer (the scope must follow a callback, not only a promise). */
const tick = () => sleep(0);

test('every line names the instance; lines written while serving a request name it too, however deep', async () => {
  const { lines, log } = capture();
  log.info('at start-up');
  await requestScope.run({ requestId: 'req-1' }, async () => {
    log.info('in the handler');
    await tick();
    // A callback, a timer, a child logger: still the request's.
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        log.child({ module: 'payments' }).warn('in a service');
        resolve();
      }, 1),
    );
  });
  log.info('after the request');
  expect(lines.map((l) => [l.msg, l.instance, l.requestId])).toEqual([
    ['at start-up', 'web-7', undefined],
    ['in the handler', 'web-7', 'req-1'],
    ['in a service', 'web-7', 'req-1'],
    ['after the request', 'web-7', undefined],
  ]);
});

test('two requests at once keep their own ids', async () => {
  const { lines, log } = capture();
  await Promise.all(
    ['a', 'b'].map((id) =>
      requestScope.run({ requestId: id }, async () => {
        await tick();
        log.info({ who: id }, 'working');
      }),
    ),
  );
  expect(lines.map((l) => [l.who, l.requestId])).toEqual([
    ['a', 'a'],
    ['b', 'b'],
  ]);
});

test('a request id a line sets itself wins over the scope; the redactor still applies', () => {
  const { lines, log } = capture();
  requestScope.run({ requestId: 'scope' }, () => log.info({ requestId: 'explicit', password: 'hunter2' }, 'line'));
  expect(lines[0]).toMatchObject({ requestId: 'explicit', password: '***' });
});

test('LOG_LEVEL is one of pino\'s levels, validated like every other variable', () => {
  const base = { NODE_ENV: 'test', JWT_SECRET: 'a-secret-of-enough-length' };
  for (const level of LOG_LEVELS) expect(loadConfig({ ...base, LOG_LEVEL: level }).logLevel).toBe(level);
  expect(() => loadConfig({ ...base, LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
  expect(() => loadConfig({ ...base, LOG_LEVEL: 'INFO' })).toThrow(/^Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "INFO"$/);
});

test('pretty lines only for development on a terminal', () => {
  const tty = process.stdout.isTTY;
  try {
    process.stdout.isTTY = true;
    expect(wantsPrettyLogs('development')).toBe(true);
    expect(wantsPrettyLogs('production')).toBe(false);
    expect(wantsPrettyLogs('test')).toBe(false);
    process.stdout.isTTY = false;
    expect(wantsPrettyLogs('development')).toBe(false);
  } finally {
    process.stdout.isTTY = tty;
  }
  // Asked for pretty lines, the logger still works (pino-pretty is a devDependency, installed here).
  expect(createLogger({ level: 'silent', pretty: true }).level).toBe('silent');
});
