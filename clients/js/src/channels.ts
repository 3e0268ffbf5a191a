// The channels protocol (`/ws?token=JWT`): subscribe, publish, deliveries. Subscriptions
// are replayed after every reconnect; the token comes from `getToken` before each attempt
// so an expired one is replaced without the caller noticing.

import { Emitter } from './events.js';
import { wsUrl, type Context } from './context.js';
import { ReconnectingSocket } from './socket.js';

export interface ChannelMessage {
  channel: string;
  event: string;
  data: Record<string, unknown>;
  timestamp: number;
}

export interface ChannelEvents {
  message: ChannelMessage;
  subscribed: { channel: string; event: string };
  unsubscribed: { channel: string };
  error: { code: string; message: string };
  raw: Record<string, unknown>;
}

export interface ChannelOptions {
  /** The JWT [default: the client's token]. */
  token?: string;
  /**
   * Called before every connection attempt (and so after the server refused an expired
   * token): returns the token to use. The usual place to ask the application back end.
   */
  getToken?: () => string | Promise<string>;
}

export class Channels extends Emitter<ChannelEvents> {
  readonly socket: ReconnectingSocket;
  /** channel -> event filter, replayed on reconnect. */
  private readonly subscriptions = new Map<string, string>();
  private token: string | undefined;

  constructor(ctx: Context, opts: ChannelOptions = {}, private readonly onClosed: () => void = () => {}) {
    super();
    this.token = opts.token;
    this.socket = new ReconnectingSocket(
      ctx.WebSocket,
      {
        url: async () => {
          if (opts.getToken) this.token = await opts.getToken();
          const token = this.token ?? ctx.token();
          return wsUrl({ ...ctx, token: () => token }, '/ws', {});
        },
        onOpen: () => {
          for (const [channel, event] of this.subscriptions) {
            this.socket.send({ type: 'subscribe', channel, event });
          }
        },
        onMessage: (m) => this.receive(m),
      },
      ctx.backoff,
    );
  }

  get state() {
    return this.socket.state;
  }

  /** Replaces the token used by the next connection attempt (the refresh hook's push form). */
  setToken(token: string): void {
    this.token = token;
  }

  /** Subscribes (now when open, else on connect); resolves when the server confirms. */
  subscribe(channel: string, event = 'signal:all'): Promise<{ channel: string; event: string }> {
    this.subscriptions.set(channel, event);
    const confirmed = this.next('subscribed', (s) => s.channel === channel);
    this.socket.send({ type: 'subscribe', channel, event });
    return confirmed;
  }

  unsubscribe(channel: string): void {
    this.subscriptions.delete(channel);
    this.socket.send({ type: 'unsubscribe', channel });
  }

  /** Publishes to the other subscribers of `channel`; false when not connected. */
  publish(channel: string, event: string, data: Record<string, unknown> = {}): boolean {
    return this.socket.send({ type: 'publish', channel, event, data });
  }

  close(): void {
    this.socket.close();
    this.onClosed();
  }

  private receive(m: Record<string, unknown>): void {
    this.emit('raw', m);
    if (m.type === 'message') {
      this.socket.resetBackoff();
      this.emit('message', {
        channel: String(m.channel),
        event: String(m.event),
        data: (m.data ?? {}) as Record<string, unknown>,
        timestamp: Number(m.timestamp),
      });
    } else if (m.type === 'subscribed') {
      this.socket.resetBackoff();
      const d = (m.data ?? {}) as Record<string, unknown>;
      this.emit('subscribed', { channel: String(m.channel), event: String(d.event ?? '') });
    } else if (m.type === 'unsubscribed') {
      this.emit('unsubscribed', { channel: String(m.channel) });
    } else if (m.type === 'error') {
      const e = (m.error ?? {}) as Record<string, unknown>;
      const error = { code: String(e.code ?? m.code ?? ''), message: String(e.message ?? m.message ?? '') };
      // A refused subscription is not kept for replay.
      if (error.code === 'ROOM_FULL' || error.code === 'INVALID_CHANNEL') {
        const ch = typeof m.channel === 'string' ? m.channel : undefined;
        if (ch) this.subscriptions.delete(ch);
      }
      this.emit('error', error);
    }
  }
}
