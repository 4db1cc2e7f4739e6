/**
 * bench:peers' figures as text: the tables it prints and writes to docs/benchmarks.md (between
 * markers), and the one README line drawn from them. Pure functions, so that
 * tests/unit/bench-peers-readme.test.ts can check the README line against the table.
 */

export const DOC_START = '<!-- bench:peers:start (written by npm run bench:peers) -->';
export const DOC_END = '<!-- bench:peers:end -->';
export const README_START = '<!-- bench:peers:readme (written by npm run bench:peers) -->';
export const README_END = '<!-- /bench:peers:readme -->';

/** The workload the README line is about. */
export const HEADLINE_WORKLOAD = '1,000 at one instant';

export const CAP_MS = 60_000;

const thousands = (x: number) => Math.round(x).toLocaleString('en-US');

/** A lateness in ms as the tables print it; never heard within the round's cap: "> 60 s". */
export const fmtMs = (ms: number) => (Number.isFinite(ms) ? thousands(ms) : '> 60 s');

/** How many times longer `slower` took than `faster`, as printed: "7.8×"; "> 650×" when `slower` never came. */
export function fmtRatio(slower: number, faster: number): string {
  if (!Number.isFinite(faster)) return '–';
  const base = Math.max(1, faster);
  if (!Number.isFinite(slower)) return `> ${(CAP_MS / base).toFixed(0)}×`;
  const r = slower / base;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(r >= 2 ? 1 : 2)}×`;
}

export function replaceBetween(text: string, start: string, end: string, content: string): string {
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`markers ${start} … ${end} not found`);
  return `${text.slice(0, i + start.length)}\n${content}\n${text.slice(j)}`;
}

export function between(text: string, start: string, end: string): string | undefined {
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  return i < 0 || j < i ? undefined : text.slice(i + start.length, j).trim();
}

/** One row of the comparison table: a workload, Deadline's figure, the best peer's and the floor's. */
export interface Headline {
  /** When the run began, as the section prints it: "2026-12-07 05:31 UTC". */
  ranAt: string;
  workload: string;
  metric: string;
  deadlineMs: number;
  bestPeer: string;
  bestPeerMs: number;
  floorMs: number;
}

export const COMPARISON_HEADER = '| workload | measure | Deadline (ms) | best peer | best peer (ms) | best peer ÷ Deadline | floor (ms) | Deadline ÷ floor |';

export function comparisonRow(h: Omit<Headline, 'ranAt'>): string {
  const floor = Number.isNaN(h.floorMs) ? '–' : fmtMs(h.floorMs);
  const floorRatio = Number.isNaN(h.floorMs) ? '–' : fmtRatio(h.deadlineMs, h.floorMs);
  return `| ${h.workload} | ${h.metric} | ${fmtMs(h.deadlineMs)} | ${h.bestPeer} | ${fmtMs(h.bestPeerMs)} | ${fmtRatio(h.bestPeerMs, h.deadlineMs)} | ${floor} | ${floorRatio} |`;
}

const parseMs = (cell: string) => (cell.startsWith('>') ? Infinity : cell === '–' ? NaN : Number(cell.replace(/,/g, '')));

/** The comparison row of `workload` in the section bench:peers wrote, with the time it ran. */
export function parseHeadline(section: string, workload = HEADLINE_WORKLOAD): Headline | undefined {
  const ranAt = /^Ran (\d{4}-\d\d-\d\d \d\d:\d\d UTC)/m.exec(section)?.[1];
  const afterHeader = section.slice(section.indexOf(COMPARISON_HEADER));
  const row = afterHeader.split('\n').find((line) => line.startsWith(`| ${workload} |`));
  if (!ranAt || !row || !section.includes(COMPARISON_HEADER)) return undefined;
  const cells = row.split('|').slice(1, -1).map((c) => c.trim());
  return { ranAt, workload: cells[0], metric: cells[1], deadlineMs: parseMs(cells[2]), bestPeer: cells[3], bestPeerMs: parseMs(cells[4]), floorMs: parseMs(cells[6]) };
}

/** The README's line, from the comparison table's headline row. */
export function readmeLine(h: Headline): string {
  const verdict = h.bestPeerMs >= h.deadlineMs ? `${fmtRatio(h.bestPeerMs, h.deadlineMs)} ahead` : `${fmtRatio(h.deadlineMs, h.bestPeerMs)} behind`;
  return (
    `**Side by side** (\`npm run bench:peers\`, ${h.ranAt}): ${h.workload.replace(/^1,000/, '1,000 auctions ending')} reached their watcher ` +
    `at p99 ${fmtMs(h.deadlineMs)} ms with Deadline, ${fmtMs(h.bestPeerMs)} ms with the best peer (${h.bestPeer}): Deadline ${verdict}; ` +
    `${fmtMs(h.floorMs)} ms with no scheduler at all ([details](docs/benchmarks.md#side-by-side-with-the-peers-npm-run-benchpeers)).`
  );
}
