/**
 * The README's side-by-side line (written by `npm run bench:peers`) says what the table bench:peers
 * wrote to docs/benchmarks.md says, so that neither can drift from the other: the same run, the same
 * figures for 1,000 ends at one instant, the same best peer, and "ahead" only when Deadline is.
 */
import { readFileSync } from 'node:fs';
import { DOC_END, DOC_START, HEADLINE_WORKLOAD, README_END, README_START, between, parseHeadline, readmeLine } from '../../bench/peers/report.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe("the README's line against bench:peers' table", () => {
  const section = between(read('docs/benchmarks.md'), DOC_START, DOC_END);
  const line = between(read('README.md'), README_START, README_END);

  it('both are there, between their markers', () => {
    expect(section).toBeDefined();
    expect(line).toBeDefined();
    expect(parseHeadline(section!)).toBeDefined();
  });

  it("gives the table's figures for 1,000 ends at one instant, from the same run", () => {
    const row = section!.split('\n').find((l) => l.startsWith(`| ${HEADLINE_WORKLOAD} |`) && l.split('|').length === 10)!;
    expect(row).toBeDefined();
    const [, , deadline, bestPeer, bestPeerMs, , floor] = row.split('|').slice(1, -1).map((c) => c.trim());
    expect(line).toContain(`p99 ${deadline} ms with Deadline, ${bestPeerMs} ms with the best peer (${bestPeer})`);
    expect(line).toContain(`; ${floor} ms with no scheduler at all`);
    expect(line).toContain(parseHeadline(section!)!.ranAt);
  });

  it('is the line bench:peers writes from that table, word for word', () => {
    expect(line).toBe(readmeLine(parseHeadline(section!)!));
  });

  it('says ahead only when Deadline is', () => {
    const h = { ranAt: '2026-12-07 05:30 UTC', workload: HEADLINE_WORKLOAD, metric: 'p99', deadlineMs: 90, bestPeer: 'BullMQ c=100', bestPeerMs: 720, floorMs: 50 };
    expect(readmeLine(h)).toContain('(BullMQ c=100): Deadline 8.0× ahead;');
    expect(readmeLine({ ...h, deadlineMs: 900 })).toContain('(BullMQ c=100): Deadline 1.25× behind;');
  });
});
