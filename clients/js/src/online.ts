// The online-status API for one player: the ping socket (`/api/online/ws`, a ping about
// every second) while it can connect; when it cannot, HTTP login + heartbeats keep the
// player online (the fallback path), until the socket is back.

import { ValueStream } from './events.js';
import { request, wsUrl, type Context } from './context.js';
import { ReconnectingSocket } from './socket.js';

/** How the player is kept online now. */
export type OnlineMode = 'connecting' | 'socket' | 'http' | 'offline';

export interface OnlineOptions {
  /** Ping period on the socket, in ms [default 1000; the server drops a socket silent 10 s]. */
  pingMs?: number;
  /** HTTP heartbeat period while the socket is down, in ms [default 5000; ONLINE_TTL is 15 s]. */
  heartbeatMs?: number;
}

export class OnlinePlayer {
  readonly mode = new ValueStream<OnlineMode>('connecting');
  readonly socket: ReconnectingSocket;
  private ping: ReturnType<typeof setInterval> | undefined;
  private http: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  constructor(
    private readonly ctx: Context,
    readonly playerId: string,
    private readonly opts: OnlineOptions = {},
    private readonly onClosed: () => void = () => {},
  ) {
    this.socket = new ReconnectingSocket(
      ctx.WebSocket,
      {
        url: () => wsUrl(ctx, '/api/online/ws', { playerId }),
        onOpen: () => this.socketUp(),
        onMessage: (m) => {
          if (m.type === 'pong') this.socket.resetBackoff();
        },
        onClose: () => {
          this.socketDown();
        },
      },
      ctx.backoff,
    );
  }

  /** Logs out (HTTP) and closes the socket; the player is offline at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    this.socket.close();
    this.mode.set('offline');
    this.onClosed();
    try {
      await request(this.ctx, 'POST', '/api/online/logout', { playerId: this.playerId });
    } catch {
      // Already offline, or the server is gone: the TTL ends the record anyway.
    }
  }

  private clearTimers(): void {
    if (this.ping) clearInterval(this.ping);
    if (this.http) clearInterval(this.http);
    this.ping = this.http = undefined;
  }

  private socketUp(): void {
    this.clearTimers();
    this.socket.send({ type: 'ping' });
    this.ping = setInterval(() => this.socket.send({ type: 'ping' }), this.opts.pingMs ?? 1000);
    this.mode.set('socket');
  }

  private socketDown(): void {
    if (this.stopped) return;
    if (this.ping) clearInterval(this.ping);
    this.ping = undefined;
    if (this.http) return;
    this.mode.set('http');
    void this.httpBeat(true);
    this.http = setInterval(() => void this.httpBeat(false), this.opts.heartbeatMs ?? 5000);
  }

  /** One heartbeat; logs in first (or again after a 404: the record expired meanwhile). */
  private async httpBeat(login: boolean): Promise<void> {
    const body = { playerId: this.playerId };
    try {
      if (!login) {
        await request(this.ctx, 'POST', '/api/online/heartbeat', body);
        return;
      }
    } catch (e) {
      if ((e as { status?: number }).status !== 404) return;
    }
    try {
      await request(this.ctx, 'POST', '/api/online/login', body);
    } catch {
      // The server is unreachable too: the next tick tries again.
    }
  }
}
