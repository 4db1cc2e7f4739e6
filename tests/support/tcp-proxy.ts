import net from 'node:net';

/**
 * A TCP proxy of a test's own between a server and PostgreSQL (or anything else), so the test can
 * take the service away from that one server while the shared one stays up for the other files.
 *
 * - `cut('refuse')`: every open connection is reset and new ones are refused (nothing listens on
 *   the port): PostgreSQL stopped, or its host gone.
 * - `cut('hang')`: every open connection is reset; new ones are accepted and then never answered:
 *   packets dropped somewhere on the way.
 * - `restore()`: connections go through again, on the same port.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private mode: 'up' | 'refuse' | 'hang' = 'up';
  /** Connections accepted (and passed on, or held) since the start. */
  accepted = 0;

  private constructor(
    private readonly target: { host: string; port: number },
    public port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target, 0);
    await proxy.listen();
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  async cut(mode: 'refuse' | 'hang' = 'refuse'): Promise<void> {
    this.mode = mode;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (mode === 'refuse') await this.unlisten();
    else if (!this.server) await this.listen();
  }

  async restore(): Promise<void> {
    for (const s of this.sockets) s.resetAndDestroy(); // connections held by 'hang'
    this.sockets.clear();
    this.mode = 'up';
    if (!this.server) await this.listen();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await this.unlisten();
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    // A reset is what the test wants; an unhandled socket error would fail the file.
    socket.on('error', () => {});
  }

  private onConnection(client: net.Socket): void {
    this.accepted++;
    this.track(client);
    if (this.mode === 'hang') return;
    const upstream = net.connect(this.target.port, this.target.host);
    this.track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  private listen(): Promise<void> {
    const server = net.createServer((c) => this.onConnection(c));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        this.port = (server.address() as net.AddressInfo).port;
        this.server = server;
        resolve();
      });
    });
  }

  private unlisten(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
