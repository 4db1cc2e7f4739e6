import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** The process's memory right after its last major (mark-compact) collection. */
export interface AfterMajorGc {
  heapUsedBytes: number;
  rssBytes: number;
}

let last: AfterMajorGc | null = null;
let observer: PerformanceObserver | undefined;

/**
 * Memory as it is right after each major collection: what the heap keeps alive, without the garbage
 * waiting for the next one. Sampled at any other moment, heap and RSS ride V8's collection cycle (up
 * to 2x apart with `--heap-growing-percent=100`), so a trend across those samples says where in the
 * cycle they fell as much as whether memory grows (docs/benchmarks.md, "Soak"). One observer per
 * process, however many apps it runs; null until the first major collection.
 */
export function afterMajorGc(): AfterMajorGc | null {
  if (!observer) {
    observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if ((entry as { detail?: { kind?: number } }).detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
        last = { heapUsedBytes: getHeapStatistics().used_heap_size, rssBytes: process.memoryUsage.rss() };
      }
    });
    observer.observe({ entryTypes: ['gc'] });
  }
  return last;
}
