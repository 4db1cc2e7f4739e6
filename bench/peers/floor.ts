/**
 * The floor, a process of its own: no scheduler at all. Told the due times, it waits for each on a
 * timer and runs one batched `UPDATE … RETURNING` of every auction due by then, publishes the batch on
 * Redis, and writes each ended auction as one frame to its one raw WebSocket client. What is left of a
 * deadline's lateness here is the machine's at that hour: Deadline's distance from it is Deadline's
 * overhead. argv[2]: { databaseUrl, redisUrl, prefix } as JSON. Says { type: 'ready', port }.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket, { WebSocketServer } from 'ws';
import { END_DUE_SQL, endedChannel, sleep } from './common.js';

const { databaseUrl, redisUrl, prefix } = JSON.parse(process.argv[2]) as { databaseUrl: string; redisUrl: string; prefix: string };
process.on('disconnect', () => process.exit(0));

const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
const redis = new Redis(redisUrl);
const channel = endedChannel(prefix);
const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await new Promise((resolve) => server.once('listening', resolve));
let client: WebSocket | undefined;
server.on('connection', (socket) => (client = socket));

/** Ends every auction due by each of `dues` (ascending, ms) at that time, one statement per wake-up. */
async function endAt(dues: number[]): Promise<void> {
  let i = 0;
  while (i < dues.length) {
    await sleep(dues[i] - Date.now());
    const started = Date.now();
    const { rows } = await db.query(END_DUE_SQL);
    if (rows.length > 0) {
      await redis.publish(channel, JSON.stringify(rows));
      for (const row of rows) client?.send(JSON.stringify({ auction: row }));
    }
    while (i < dues.length && dues[i] <= started) i++;
  }
}

process.on('message', (m: { type: string; dues: number[] }) => {
  if (m.type === 'dues') void endAt(m.dues).catch((e: Error) => console.error(`floor: ${e.message}`));
});
// A first statement so that the connection and the plan are warm, as the others' are.
await db.query(END_DUE_SQL);
process.send!({ type: 'ready', port: (server.address() as { port: number }).port });
