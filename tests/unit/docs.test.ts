/**
 * The documents against the code (issue 30):
 * - the environment variables read anywhere in src/, the configuration table of docs/operations.md and
 *   .env.example are one set, with one default each, and that default is the code's;
 * - the variables docs/operations.md lists as removed are read and listed nowhere;
 * - every alert of deploy/alerts.yml has its runbook, and every deadline_* metric the server registers
 *   is described, in docs/operations.md;
 * - every repository path README.md and docs/*.md name in backticks exists.
 * Each test collects every difference and fails with the whole list.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Every file under `dir` (relative to the root), folders in `skip` left out. */
function walk(dir: string, skip: ReadonlySet<string> = new Set()): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (skip.has(path)) return [];
    return entry.isDirectory() ? walk(path, skip) : [path];
  });
}

// ---------------------------------------------------------------------------------------------------
// What src/ reads. The configuration (src/config.ts and src/config/) reads its variables through
// small helpers taking the environment first (`num(env, 'PORT', 4000, …)`, `str(env, …)`, `bool`,
// `url`, `timezone`, `clockTime`, `required`) or directly (`env.JWT_SECRET`); other files read
// `process.env.NAME`. A read by a computed name (`process.env[name]`) could not be checked, so it is
// refused.
// ---------------------------------------------------------------------------------------------------

const READS = [/\benv\.([A-Z][A-Z0-9_]*)\b/g, /\benv\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\]/g, /\(\s*env\s*,\s*['"`]([A-Z][A-Z0-9_]*)['"`]/g];
/** The configuration's files: what they read is checked by probing `loadConfig`. */
const isConfigFile = (file: string) => file === 'src/config.ts' || file.startsWith('src/config/');

interface SourceRead {
  name: string;
  files: Set<string>;
}

function sourceReads(): { reads: Map<string, SourceRead>; computed: string[] } {
  const reads = new Map<string, SourceRead>();
  const computed: string[] = [];
  for (const file of walk('src').filter((f) => f.endsWith('.ts'))) {
    const text = read(file);
    for (const pattern of READS) {
      for (const m of text.matchAll(pattern)) {
        const entry = reads.get(m[1]) ?? { name: m[1], files: new Set<string>() };
        entry.files.add(file);
        reads.set(m[1], entry);
      }
    }
    for (const m of text.matchAll(/process\.env\[(?!\s*['"`][A-Z][A-Z0-9_]*['"`]\s*\])[^\]]*\]/g)) computed.push(`${file}: ${m[0]}`);
  }
  return { reads, computed };
}

/**
 * The default a file other than the configuration's gives a variable it reads, when it is a literal:
 * `process.env.NAME || 4010`, `process.env.NAME ?? '127.0.0.1'`. undefined when none is found.
 */
function literalDefault(file: string, name: string): string | undefined {
  const m = new RegExp(`process\\.env\\.${name}\\s*(?:\\|\\||\\?\\?)\\s*(?:'([^']*)'|"([^"]*)"|(-?\\d+(?:\\.\\d+)?))`).exec(read(file));
  return m ? (m[1] ?? m[2] ?? m[3]) : undefined;
}

// ---------------------------------------------------------------------------------------------------
// What the documents say. docs/operations.md's "## Configuration" table: one row per variable, the
// first cell the name in backticks, the second its default: a literal in backticks (`4000`; a literal
// with <placeholders>, `<hostname>-<pid>`, is computed from them), or "unset" (no default: absent,
// empty, or computed from other settings). .env.example: one `# NAME=value` line per variable, value
// empty when the table says unset or computed.
// ---------------------------------------------------------------------------------------------------

type Documented = { kind: 'literal'; value: string } | { kind: 'computed'; value: string } | { kind: 'unset' } | { kind: 'unreadable'; cell: string };

function section(markdown: string, heading: RegExp): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  if (start === -1) return '';
  const level = /^#+/.exec(lines[start])![0].length;
  const end = lines.findIndex((l, i) => i > start && new RegExp(`^#{1,${level}} `).test(l));
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

function configurationTable(): { rows: Map<string, Documented>; duplicates: string[] } {
  const rows = new Map<string, Documented>();
  const duplicates: string[] = [];
  for (const line of section(read('docs/operations.md'), /^## Configuration\b/).split('\n')) {
    if (!line.startsWith('|')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    const name = /^`([A-Z][A-Z0-9_]*)`$/.exec(cells[0] ?? '')?.[1];
    if (!name) continue;
    if (rows.has(name)) duplicates.push(name);
    const cell = cells[1] ?? '';
    const literal = /^`([^`]*)`/.exec(cell)?.[1];
    rows.set(
      name,
      literal !== undefined
        ? { kind: /<[^>]+>/.test(literal) ? 'computed' : 'literal', value: literal }
        : /^unset\b/.test(cell)
          ? { kind: 'unset' }
          : { kind: 'unreadable', cell },
    );
  }
  return { rows, duplicates };
}

function envExample(): { values: Map<string, string>; duplicates: string[] } {
  const values = new Map<string, string>();
  const duplicates: string[] = [];
  for (const line of read('.env.example').split('\n')) {
    const m = /^#?\s?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    if (values.has(m[1])) duplicates.push(m[1]);
    values.set(m[1], m[2].trim());
  }
  return { values, duplicates };
}

const difference = (a: Iterable<string>, b: { has(k: string): boolean }) => [...a].filter((x) => !b.has(x)).sort();

// ---------------------------------------------------------------------------------------------------
// The code's defaults, by probing loadConfig: a documented default is right when setting the variable
// to it changes nothing in the configuration loaded without it. The probe runs as production (the
// table's defaults are production's) with both payment providers configured, so that the variables
// read only for a configured provider (WECHATPAY_BASE_URL, ALIPAY_GATEWAY, …) are read too.
// ---------------------------------------------------------------------------------------------------

const PROBE_BASE: Record<string, string> = {
  NODE_ENV: 'production',
  JWT_SECRET: 'x'.repeat(32),
  WECHATPAY_MCHID: '1900000001',
  WECHATPAY_APPID: 'wx00000000000000001',
  WECHATPAY_SERIAL_NO: 'SERIAL0001',
  WECHATPAY_PRIVATE_KEY: 'merchant-key.pem',
  WECHATPAY_APIV3_KEY: 'k'.repeat(32),
  WECHATPAY_PUBLIC_KEY_ID: 'PUB_KEY_ID_0001',
  WECHATPAY_PUBLIC_KEY: 'wechatpay-public-key.pem',
  ALIPAY_APP_ID: '2021000000000001',
  ALIPAY_PRIVATE_KEY: 'alipay-app-private-key',
  ALIPAY_PUBLIC_KEY: 'alipay-public-key',
};

/** `<hostname>-<pid>` as this process would compute it. */
const fillPlaceholders = (value: string) => value.replaceAll('<hostname>', hostname()).replaceAll('<pid>', String(process.pid));

/** Why setting `name` to `value` is not the same as leaving it unset; null when it is. */
function probe(name: string, value: string): string | null {
  const without = { ...PROBE_BASE };
  delete without[name];
  let unset: unknown;
  let set: unknown;
  try {
    unset = loadConfig(without);
    set = loadConfig({ ...without, [name]: value });
  } catch (err) {
    return `loading the configuration with ${name}=${value} failed: ${(err as Error).message}`;
  }
  const a = JSON.stringify(unset);
  const b = JSON.stringify(set);
  if (a === b) return null;
  const [x, y] = [leaves(JSON.parse(a)), leaves(JSON.parse(b))];
  const changed = [...new Set([...x.keys(), ...y.keys()])].filter((k) => x.get(k) !== y.get(k));
  return `the code's default differs: ${changed.map((k) => `config.${k} is ${x.get(k)} unset, ${y.get(k)} with ${name}=${value}`).join('; ')}`;
}

/** A loaded configuration as dotted paths to JSON leaves (`wechat.baseUrl` → `"https://…"`). */
function leaves(value: unknown, path = '', into = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, path ? `${path}.${k}` : k, into);
  } else into.set(path, JSON.stringify(value));
  return into;
}

describe('configuration: src/, docs/operations.md and .env.example', () => {
  const { reads, computed } = sourceReads();
  const table = configurationTable();
  const example = envExample();

  test('src/ reads variables by name only', () => {
    expect(computed).toEqual([]);
    expect(reads.size).toBeGreaterThan(50); // the patterns still find config.ts's reads
  });

  test("docs/operations.md's table documents exactly the variables src/ reads", () => {
    const problems = [
      ...difference(reads.keys(), table.rows).map((n) => `read in ${[...reads.get(n)!.files].join(', ')} but not in docs/operations.md's table: ${n}`),
      ...difference(table.rows.keys(), reads).map((n) => `in docs/operations.md's table but read nowhere in src/: ${n}`),
      ...table.duplicates.map((n) => `twice in docs/operations.md's table: ${n}`),
    ];
    expect(problems).toEqual([]);
  });

  test('.env.example lists exactly the variables src/ reads', () => {
    const problems = [
      ...difference(reads.keys(), example.values).map((n) => `read in ${[...reads.get(n)!.files].join(', ')} but not in .env.example: ${n}`),
      ...difference(example.values.keys(), reads).map((n) => `in .env.example but read nowhere in src/: ${n}`),
      ...example.duplicates.map((n) => `twice in .env.example: ${n}`),
    ];
    expect(problems).toEqual([]);
  });

  test("every documented default is the code's, in the table and in .env.example alike", () => {
    const problems: string[] = [];
    for (const [name, doc] of table.rows) {
      if (doc.kind === 'unreadable') {
        problems.push(`${name}: the default cell must start with a \`literal\` or "unset", got "${doc.cell}"`);
        continue;
      }
      const documented = doc.kind === 'unset' ? '' : doc.kind === 'computed' ? '' : doc.value;
      const exampleValue = example.values.get(name);
      if (exampleValue !== undefined && exampleValue !== documented) {
        problems.push(`${name}: .env.example says "${exampleValue}", docs/operations.md ${doc.kind === 'literal' ? `"${doc.value}"` : `${doc.kind} (empty in .env.example)`}`);
      }
      const files = reads.get(name)?.files;
      if (!files || doc.kind === 'unset') continue;
      if ([...files].some(isConfigFile)) {
        const why = probe(name, doc.kind === 'computed' ? fillPlaceholders(doc.value) : doc.value);
        if (why) problems.push(`${name}: docs/operations.md says \`${doc.value}\`, but ${why}`);
      } else {
        for (const file of files) {
          const code = literalDefault(file, name);
          if (code === undefined) problems.push(`${name}: docs/operations.md says \`${doc.value}\`; ${file} gives it no literal default to check against`);
          else if (code !== doc.value) problems.push(`${name}: docs/operations.md says \`${doc.value}\`, ${file} defaults it to ${code}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  test('removed variables are read, documented and exampled nowhere', () => {
    const removed = [...section(read('docs/operations.md'), /^### Removed variables\b/).matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]);
    const problems = removed.flatMap((n) => [
      ...(reads.has(n) ? [`${n} is listed as removed but still read in ${[...reads.get(n)!.files].join(', ')}`] : []),
      ...(table.rows.has(n) ? [`${n} is listed as removed but still in the configuration table`] : []),
      ...(example.values.has(n) ? [`${n} is listed as removed but still in .env.example`] : []),
    ]);
    expect(problems).toEqual([]);
  });
});

describe('docs/operations.md and what the server serves', () => {
  const operations = read('docs/operations.md');

  test('every alert of deploy/alerts.yml has its runbook', () => {
    const alerts = [...read('deploy/alerts.yml').matchAll(/^\s*- alert:\s*(\w+)/gm)].map((m) => m[1]);
    expect(alerts.length).toBeGreaterThan(0);
    const runbooks = section(operations, /^## Alerts and their runbooks\b/);
    expect(alerts.filter((a) => !runbooks.includes(`**${a}**`)).map((a) => `no runbook (**${a}**) in docs/operations.md`)).toEqual([]);
  });

  test('every deadline_* metric the server registers is described', () => {
    // The registry (src/http/metrics.ts) and the gauges the composition root adds (src/app.ts, src/app/).
    const registering = ['src/http/metrics.ts', 'src/app.ts', ...walk('src/app').filter((f) => f.endsWith('.ts'))];
    const registered = new Set(registering.flatMap((f) => [...read(f).matchAll(/['"`](deadline_[a-z0-9_]+)['"`]/g)].map((m) => m[1])));
    expect(registered.size).toBeGreaterThan(10);
    const metrics = section(operations, /^## Metrics\b/);
    expect([...registered].filter((m) => !metrics.includes(`\`${m}\``)).map((m) => `not described under "## Metrics": ${m}`)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Paths. An inline code span (fenced blocks aside) is taken as a repository path when it has no
// spaces or URL, route, key or placeholder characters, and either starts with a top-level folder or
// file of the repository (`src/config.ts`, `deploy/alerts.yml`, `migrations/`) or `../`, or is a bare
// file name with one of the extensions below (`package.json`, `deploy.test.ts`), which must then be
// the name of a file somewhere in the repository. Places made at build or run time (dist/,
// node_modules/, .deadline/) are not checked.
// ---------------------------------------------------------------------------------------------------

const NOT_CHECKED = new Set(['node_modules', 'dist', '.git', '.deadline']);
const BARE_FILE = /^\.?[\w-]+(\.[\w-]+)*\.(md|ts|mjs|sh|yml|yaml|graphql|example)$/;

describe('paths named in the documents', () => {
  const top = new Set(readdirSync(ROOT).filter((n) => !NOT_CHECKED.has(n)));
  const names = new Set(walk('', new Set(NOT_CHECKED)).map((f) => basename(f)));
  const documents = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

  test.each(documents)('every path %s names in backticks exists', (doc) => {
    const text = read(doc).replace(/^(```|~~~)[\s\S]*?^\1/gm, '');
    const missing = new Set<string>();
    for (const [, span] of text.matchAll(/`([^`\n]+)`/g)) {
      const path = span.trim();
      if (/[\s:{}<>*$=?()[\]#,;|"'…]/.test(path) || /^[/-]/.test(path) || path === '.' || path === '..') continue;
      if (path.includes('/')) {
        const first = path.split('/')[0];
        // Outside the repository (`../shared/PRODUCT.md`, the contract beside a checkout): not the tree's to hold.
        if (!top.has(first)) continue;
        if (!existsSync(join(ROOT, path))) missing.add(path);
      } else if (top.has(path)) {
        continue;
      } else if (BARE_FILE.test(path) && !names.has(path)) {
        missing.add(path);
      }
    }
    expect([...missing].map((p) => `${doc} names \`${p}\`, which does not exist`)).toEqual([]);
  });
});
