// The payment sandbox for the benchmarks, on the benchmark's (and server's) thread or in a worker
// thread of its own (this file is the worker): a real provider does not run on the server's event
// loop, and the sandbox's RSA signing of every answer would otherwise be counted against the server.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { request } from 'undici';
import { pool } from './support.js';

export type SandboxMode = 'main' | 'worker';

export interface Sent {
  latencies: number[];
  ok: number;
  other: Record<string, number>;
  totalMs: number;
}

export interface BenchSandbox {
  url: string;
  setDelay(ms: number): Promise<void>;
  /** Worker mode: callbacks sent from the sandbox's thread. */
  send?(nos: readonly string[], kind: 'replay' | 'duplicate', concurrency: number): Promise<Sent>;
  close(): Promise<void>;
}

/** One call of the sandbox's control API for one trade. */
export async function control(sandboxUrl: string, orderNo: string, action: string, body?: object): Promise<{ status: number; json: any }> {
  // undici's request, not fetch: the benchmark's own HTTP calls share the 2 cores with the server.
  const res = await request(`${sandboxUrl}/sandbox/trades/${encodeURIComponent(orderNo)}/${action}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : '',
  });
  return { status: res.statusCode, json: await res.body.json() };
}

/** Every order's callback sent through the sandbox's control API (`kind`), `concurrency` at a time. */
export async function sendCallbacks(sandboxUrl: string, nos: readonly string[], kind: 'replay' | 'duplicate', concurrency: number): Promise<Sent> {
  const latencies: number[] = [];
  const other: Record<string, number> = {};
  let ok = 0;
  const t0 = performance.now();
  await pool(nos, concurrency, async (no) => {
    const t = performance.now();
    const r = await control(sandboxUrl, no, `callbacks/${kind}`).catch((e) => ({ status: 0, json: { error: (e as Error).message } }));
    latencies.push(performance.now() - t);
    // The sandbox answers 200 with what the server answered its POST: { status, body }.
    const status = r.status === 200 ? (r.json.status as number) : -r.status;
    if (status === 204) ok++;
    else {
      const key = `${status}${r.json.error ? ` ${r.json.error}` : r.json.body ? ` ${String(r.json.body).slice(0, 80)}` : ''}`;
      other[key] = (other[key] ?? 0) + 1;
    }
  });
  return { latencies, ok, other, totalMs: performance.now() - t0 };
}

async function sandboxThread(): Promise<void> {
  const { startSandbox } = await import('../src/payments/sandbox/server.js');
  const s = await startSandbox({ delayMs: (workerData as { delayMs: number }).delayMs });
  parentPort!.postMessage({ type: 'ready', url: s.url });
  const onMessage = async (m: any) => {
    if (m === 'close') {
      await s.close();
      process.exit(0);
    }
    if (m?.type === 'send') parentPort!.postMessage({ type: 'sent', sent: await sendCallbacks(s.url, m.nos, m.kind, m.concurrency) });
  };
  parentPort!.on('message', (m) => void onMessage(m));
}

export async function startBenchSandbox(mode: SandboxMode): Promise<BenchSandbox> {
  if (mode === 'main') {
    const { startSandbox } = await import('../src/payments/sandbox/server.js');
    const s = await startSandbox({ delayMs: 0 });
    return {
      url: s.url,
      setDelay: (ms) => {
        s.faults.delayMs = ms;
        return Promise.resolve();
      },
      close: () => s.close(),
    };
  }
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'sandbox', delayMs: 0 } });
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('message', (m) => resolve(m.url));
    worker.once('error', reject);
  });
  return {
    url,
    send: (nos, kind, concurrency) =>
      new Promise<Sent>((resolve) => {
        const onMessage = (m: { type: string; sent: Sent }) => {
          if (m.type !== 'sent') return;
          worker.off('message', onMessage);
          resolve(m.sent);
        };
        worker.on('message', onMessage);
        worker.postMessage({ type: 'send', nos, kind, concurrency });
      }),
    setDelay: async (ms) => {
      const res = await fetch(`${url}/sandbox/faults`, { method: 'POST', body: JSON.stringify({ delayMs: ms }) });
      const faults = (await res.json()) as { delayMs: number };
      if (faults.delayMs !== ms) throw new Error(`the sandbox did not take delayMs ${ms}`);
    },
    close: async () => {
      worker.postMessage('close');
      await new Promise((r) => worker.once('exit', r));
    },
  };
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'sandbox') await sandboxThread();
