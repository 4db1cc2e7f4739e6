/**
 * Waiting, for tests and benchmarks alike (no Jest here: bench/ imports it too). A test waits for
 * what it means with `waitUntil`; a fixed `sleep` is for a time that is the point (a deadline to
 * pass) or for room before asserting that something did NOT happen, with a comment saying which.
 */

/** Waits `ms` (a time already past waits nothing: callers compute it from deadlines, and Node warns on a negative delay). */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Polls `check` every 20 ms until it holds; throws, naming `what`, after `timeoutMs`. The check runs
 * once more at the deadline, so a loaded machine that was slow to poll does not fail a condition that
 * holds by then.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(Math.min(20, deadline - Date.now()));
  }
}
