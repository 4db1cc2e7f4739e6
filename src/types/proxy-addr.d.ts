// proxy-addr 2 (Express's own dependency) ships no types; the two functions used here.
declare module 'proxy-addr' {
  import type { IncomingMessage } from 'node:http';

  type Trust = (address: string, hop: number) => boolean;
  /** The client's address: the socket's, or the nearest X-Forwarded-For entry not trusted by `trust`. */
  function proxyaddr(req: IncomingMessage, trust: Trust): string;
  namespace proxyaddr {
    /** Addresses and subnets (and the names loopback, linklocal, uniquelocal); throws on a bad one. */
    function compile(val: string | string[]): Trust;
  }
  export = proxyaddr;
}
