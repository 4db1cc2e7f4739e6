import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The kernel's ephemeral ports (net.ipv4.ip_local_port_range, 32768–60999 here): where it picks a
 * port for every outgoing connection and every `listen(0)`. A port handed out from there could be
 * taken by one of them between our check and the server's bind (or between a kill and a restart on
 * the same port), so `freePort` picks below it.
 */
function ephemeralFloor(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && low > 2_048) return low;
  } catch {
    // not Linux: the IANA range's start
  }
  return 49_152;
}

const FLOOR = 10_000;

function canBind(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 for a server that must be told its port before it starts (redis-server, a
 * server process restarted on the same address). A server of this process listens on port 0 and reads
 * its port back instead (`PORT=0`, `listen(0)`): no port to choose, no race. This port is outside the
 * kernel's ephemeral range and nothing listened on it a moment ago; only another caller of
 * `freePort` picking the same one of ~20,000 at that moment could take it first, so a caller whose
 * server then fails to bind picks again (the tests' OwnRedis does).
 */
export async function freePort(): Promise<number> {
  const ceiling = ephemeralFloor();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = FLOOR + Math.floor(Math.random() * (ceiling - FLOOR));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port found between ${FLOOR} and ${ceiling}`);
}
