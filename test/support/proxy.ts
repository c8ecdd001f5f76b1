// A TCP load balancer in front of several Herald instances, for the scale-out tests (the throwaway
// Redis and PostgreSQL servers they run on are in support/backends.ts, which the bench shares).
import net from 'node:net';

export interface Proxy {
  url: string;
  /** Connections handed to each upstream so far, by index. */
  connections: number[];
  /** New connections wait (accepted, not forwarded) until `release()`: a reconnect held back on purpose. */
  hold(): void;
  release(): void;
  /** Drops every connection open now, both ways, as a network failure would; new ones are still accepted. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * A TCP load balancer in front of several instances: each new connection goes to the first upstream
 * that accepts it, so when one dies its clients' reconnects land on the next.
 */
export async function startProxy(ports: number[]): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const connections = ports.map(() => 0);
  let held: (() => void)[] | undefined;
  const server = net.createServer((client) => {
    track(client);
    client.pause();
    client.on('error', () => client.destroy());
    const tryUpstream = (i: number): void => {
      if (i >= ports.length || client.destroyed) {
        client.destroy();
        return;
      }
      const up = net.connect(ports[i]!, '127.0.0.1');
      up.once('error', () => tryUpstream(i + 1));
      up.once('connect', () => {
        connections[i]!++;
        track(up);
        up.removeAllListeners('error');
        up.on('error', () => up.destroy());
        up.on('close', () => client.destroy());
        client.on('close', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
      });
    };
    if (held) held.push(() => tryUpstream(0));
    else tryUpstream(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections,
    hold: () => (held ??= []),
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const go of waiting) go();
    },
    cut() {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
