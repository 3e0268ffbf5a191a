// The global visitors socket (`/web`): how many distinct sessions have a page open.

import { Emitter } from './events.js';
import { claimedSession, wsUrl, type Context } from './context.js';
import { ReconnectingSocket } from './socket.js';

export interface VisitorEvents {
  /** The number of visitors now (many tabs of one session count once). */
  count: number;
  /** A visitor left: its session id and the count after it. */
  offline: { sessionId: string; online: number };
  raw: Record<string, unknown>;
}

export class Visitors extends Emitter<VisitorEvents> {
  count = 0;
  readonly socket: ReconnectingSocket;

  constructor(ctx: Context, private readonly onClosed: () => void = () => {}) {
    super();
    this.socket = new ReconnectingSocket(
      ctx.WebSocket,
      {
        url: () => wsUrl(ctx, '/web', { socket_session_id: claimedSession(ctx) }),
        onMessage: (m) => this.receive(m),
      },
      ctx.backoff,
    );
  }

  get state() {
    return this.socket.state;
  }

  close(): void {
    this.socket.close();
    this.onClosed();
  }

  private receive(m: Record<string, unknown>): void {
    this.emit('raw', m);
    const d = (m.data ?? {}) as Record<string, unknown>;
    if (m.type === 'VISITOR_ONLINE' || m.type === 'VISITOR_OFFLINE') {
      this.socket.resetBackoff();
      this.count = Number(d.online) || 0;
      if (m.type === 'VISITOR_OFFLINE') {
        this.emit('offline', { sessionId: String(d.sessionId ?? ''), online: this.count });
      }
      this.emit('count', this.count);
    }
  }
}
