import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Fireflow } from '../fireflow.js';
import { sharedIdentity } from '../core/errors.js';

export interface ServeOptions {
  /** @default 8787 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** How long open requests may take to finish on shutdown before their connections are closed, ms. @default 10_000 */
  drainMs?: number;
  /** Shut down on SIGTERM and SIGINT (what Cloud Run and Ctrl-C send). @default true */
  handleSignals?: boolean;
  /**
   * Listen on a non-loopback `host` although `FIREBASE_AUTH_EMULATOR_HOST` is set. With the Auth emulator configured,
   * firebase-admin accepts ID tokens without checking their signature, so anyone who reaches the address can act as any
   * user or admin: only for a throwaway machine on a network you trust. @default false
   */
  allowEmulatorAuthOnNetwork?: boolean;
}

/** `serveApi` refused to listen where unverified tokens would be accepted from the network. */
export class UnsafeListenError extends Error {
  override name = 'UnsafeListenError';
}

/**
 * Throws `UnsafeListenError` for a non-loopback `host` while `FIREBASE_AUTH_EMULATOR_HOST` is set, unless `allowed`.
 * `serveApi` calls it; call it yourself before starting anything else around the server.
 */
export function checkListenHost(host: string, allowed: boolean): void {
  if (!process.env.FIREBASE_AUTH_EMULATOR_HOST || isLoopbackHost(host) || allowed) return;
  throw new UnsafeListenError(
    `refusing to listen on ${host}: FIREBASE_AUTH_EMULATOR_HOST is set, so ID tokens are accepted without a signature check and anyone who reaches this address could act as any user or admin. Listen on 127.0.0.1, or allow it explicitly (--insecure-emulator-auth, allowEmulatorAuthOnNetwork: true) on a network you trust`,
  );
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

export interface RunningApi {
  server: Server;
  url: string;
  /** Stops accepting connections, lets open requests finish (up to `drainMs`), then shuts the executor down. */
  close(): Promise<void>;
}

/** Serves the API standalone and drains it, then the executor, on SIGTERM. */
export async function serveApi(app: express.Express, fireflow: Fireflow, options: ServeOptions = {}): Promise<RunningApi> {
  checkListenHost(options.host ?? '127.0.0.1', options.allowEmulatorAuthOnNetwork === true);
  // Requests first: one in flight may be submitting a task to the executor.
  return listenHttp(app, fireflow, options, async (drained) => {
    await drained;
    await fireflow.shutdown();
  });
}

/**
 * Listens with `handler` and shuts down on `close()` (and on SIGTERM / SIGINT unless `handleSignals` is false):
 * `shutdown` gets the promise of the server having closed, with open requests given `drainMs` to finish.
 * @internal shared by `serveApi` and `serveWorker`.
 */
export async function listenHttp(
  handler: Parameters<typeof createServer>[1] & {},
  fireflow: Pick<Fireflow, 'log'>,
  options: Omit<ServeOptions, 'allowEmulatorAuthOnNetwork'>,
  shutdown: (drained: Promise<void>) => Promise<void>,
): Promise<RunningApi> {
  const port = options.port ?? 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new TypeError(`port must be a whole number from 0 to 65535, got ${JSON.stringify(options.port)}`);
  const drainMs = options.drainMs ?? 10_000;
  if (!Number.isFinite(drainMs) || drainMs < 0) throw new TypeError(`drainMs must be a number >= 0, got ${JSON.stringify(options.drainMs)}`);
  const host = options.host ?? '127.0.0.1';
  const server = createServer(handler);
  // A request Node cannot parse (an empty Content-Length, a header with a NUL) never reaches the app; answer it in
  // the API's own error shape rather than Node's bare "400 Bad Request".
  server.on('clientError', (error: Error & { code?: string }, socket) => {
    if (!socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) return socket.destroy();
    const body = JSON.stringify({ error: { code: 'invalid-argument', message: `the HTTP request could not be parsed (${error.code ?? error.message})`, details: null } });
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { address, port: bound } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  // While closing, a connection whose request was just answered is idle: close it then, rather than wait for its
  // keep-alive to time out (the client's fetch keeps it open for seconds).
  server.on('request', (_req, res: ServerResponse) => res.once('finish', () => closing && setImmediate(() => server.closeIdleConnections())));
  const close = () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), drainMs);
      await shutdown(closed);
      clearTimeout(timer);
    })());
  if (options.handleSignals ?? true) {
    const onSignal = (signal: NodeJS.Signals) => {
      fireflow.log.info(`${signal}: draining the server and the executor`);
      void close().then(() => process.exit(0));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { server, url: `http://${address.includes(':') ? `[${address}]` : address}:${bound}`, close };
}

sharedIdentity(UnsafeListenError, 'UnsafeListenError');
