/**
 * A tiny loopback TCP proxy for fault injection (reliability.md §3): sits between the relay and
 * a server (the fake upstream, Redis) and misbehaves on demand. A mode applies to connections
 * accepted after it is set; `refuse` also destroys the live ones, and `setMode(m, { dropLive })`
 * destroys them for any mode.
 *
 * pass       forward both ways
 * refuse     stop listening (connect gets ECONNREFUSED); `setMode` back to anything re-listens
 * reset      accept, then `resetAndDestroy()` (the client sees ECONNRESET)
 * blackhole  accept, read and drop everything, never answer
 * cut        forward, but after `cutAfterBytes` bytes from the server, reset both sides
 * trickle    forward, writing the server's bytes to the client one byte per write
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'refuse' | 'reset' | 'blackhole' | 'cut' | 'trickle';

export interface TcpProxyOptions {
  targetHost?: string;
  targetPort: number;
  mode?: ProxyMode;
  /** For `cut`: bytes from the server forwarded before the connection is reset. */
  cutAfterBytes?: number;
}

export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  readonly mode: ProxyMode;
  /** Connections accepted so far (all modes). */
  readonly connections: number;
  /** Connections open now. */
  readonly open: number;
  setMode(mode: ProxyMode, options?: { cutAfterBytes?: number; dropLive?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  let mode: ProxyMode = options.mode ?? 'pass';
  let cutAfterBytes = options.cutAfterBytes ?? 0;
  let accepted = 0;
  const live = new Set<net.Socket>();
  let port = 0;

  const server = net.createServer((client) => {
    accepted += 1;
    live.add(client);
    client.once('close', () => live.delete(client));
    client.on('error', () => undefined);
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'blackhole') {
      client.resume();
      return;
    }
    const connMode = mode;
    const limit = cutAfterBytes;
    const upstream = net.connect({ host: targetHost, port: options.targetPort });
    live.add(upstream);
    upstream.once('close', () => live.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => {
      if (!client.destroyed) client.end();
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    client.once('end', () => upstream.end());
    let forwarded = 0;
    upstream.on('data', (chunk: Buffer) => {
      if (connMode === 'cut') {
        const room = limit - forwarded;
        if (room > 0) client.write(chunk.subarray(0, room));
        forwarded += Math.min(room, chunk.length);
        if (forwarded >= limit) {
          upstream.destroy();
          // let the forwarded bytes out before the RST
          client.write('', () => client.resetAndDestroy());
        }
        return;
      }
      if (connMode === 'trickle') {
        for (let i = 0; i < chunk.length; i += 1) client.write(chunk.subarray(i, i + 1));
        return;
      }
      client.write(chunk);
    });
  });

  const startListening = (at: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address();
        port = typeof address === 'object' && address ? address.port : at;
        resolve();
      });
    });
  const stopListening = (): Promise<void> =>
    new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));

  if (mode !== 'refuse') await startListening(0);
  else {
    await startListening(0);
    await stopListening();
  }

  return {
    get port() {
      return port;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get mode() {
      return mode;
    },
    get connections() {
      return accepted;
    },
    get open() {
      return live.size;
    },
    async setMode(next, extra = {}) {
      if (extra.cutAfterBytes !== undefined) cutAfterBytes = extra.cutAfterBytes;
      const was = mode;
      mode = next;
      if (extra.dropLive) for (const socket of live) socket.destroy();
      if (next === 'refuse' && was !== 'refuse') {
        const stopped = stopListening();
        for (const socket of live) socket.destroy();
        await stopped;
      } else if (next !== 'refuse' && was === 'refuse') {
        await startListening(port);
      }
    },
    async close() {
      const stopped = stopListening();
      for (const socket of live) socket.destroy();
      await stopped;
    },
  };
}
