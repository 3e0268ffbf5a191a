// @activenow/client: one `ActiveNow` object per server. Rooms, visitors, channels, online
// status and session push share its session id, token, back-off and connection state.

import type { BackoffOptions } from './backoff.js';
import { ActiveNowError, request, type Context, type FetchLike, type VisibilitySource } from './context.js';
import { ValueStream } from './events.js';
import { Channels, type ChannelOptions } from './channels.js';
import { OnlinePlayer, type OnlineOptions } from './online.js';
import { RoomPresence, type RoomOptions } from './rooms.js';
import { waitForSession, type SessionUpdate, type WaitOptions } from './session.js';
import type { ConnectionState, ReconnectingSocket, WebSocketFactory } from './socket.js';
import { defaultStorage, persistentSessionId, type KeyValueStorage } from './storage.js';
import { Visitors } from './visitors.js';

export { ActiveNowError, MemoryStorage_ as MemoryStorage };
export { backoffDelay } from './backoff.js';
export { heartbeatPeriodMs } from './rooms.js';
export { Emitter, ValueStream } from './events.js';
export type { BackoffOptions, ChannelOptions, ConnectionState, FetchLike, KeyValueStorage, OnlineOptions };
export type { RoomOptions, SessionUpdate, VisibilitySource, WaitOptions, WebSocketFactory };
export type { Channels, OnlinePlayer, RoomPresence, Visitors };
export type { Member, Hello, RoomEvents } from './rooms.js';
export type { ChannelMessage, ChannelEvents } from './channels.js';
export type { VisitorEvents } from './visitors.js';
export type { OnlineMode } from './online.js';
import { MemoryStorage as MemoryStorage_ } from './storage.js';

export interface ActiveNowOptions {
  /** The server, `http(s)://host[:port]` [default: the page's origin in a browser]. */
  url?: string;
  /**
   * A token from the application's back end (CLIENT_AUTH=jwt): sent as `?token=` on every
   * socket and `Authorization: Bearer` on every HTTP call. A function is asked each time.
   */
  token?: string | (() => string | undefined);
  /** The session id (identity) [default: one per browser, kept in `storage`]. */
  sessionId?: string;
  /** Where the session id is kept [default: localStorage, else memory]. */
  storage?: KeyValueStorage;
  /** The WebSocket constructor [default: globalThis.WebSocket; in Node pass `ws`'s]. */
  WebSocket?: WebSocketFactory;
  /** [default: globalThis.fetch] */
  fetch?: FetchLike;
  /** Reconnection back-off. */
  backoff?: BackoffOptions;
  /** Tab visibility (heartbeats pause while hidden) [default: globalThis.document]. */
  document?: VisibilitySource | null;
}

export class ActiveNow {
  /** This browser's (or this process's) identity. */
  readonly sessionId: string;
  /**
   * All sockets of this client together: 'open' when every one is open, 'connecting' or
   * 'reconnecting' while one is not, 'closed' after {@link close} (or with no socket).
   */
  readonly connectionState = new ValueStream<ConnectionState>('closed');
  private readonly ctx: Context;
  private readonly sockets = new Map<ReconnectingSocket, () => void>();
  private readonly closers = new Set<() => void>();
  private closed = false;

  constructor(opts: ActiveNowOptions = {}) {
    const g = globalThis as {
      location?: { origin?: string };
      WebSocket?: WebSocketFactory;
      fetch?: FetchLike;
      document?: VisibilitySource;
    };
    const base = (opts.url ?? g.location?.origin ?? '').replace(/\/+$/, '');
    if (!/^https?:\/\//.test(base)) {
      throw new Error('ActiveNow: pass url: "http(s)://host:port" (no page origin to default to)');
    }
    const WS = opts.WebSocket ?? g.WebSocket;
    if (!WS) throw new Error('ActiveNow: no WebSocket here; in Node pass { WebSocket } from the ws package');
    const fetchFn = opts.fetch ?? (g.fetch ? g.fetch.bind(globalThis) : undefined);
    if (!fetchFn) throw new Error('ActiveNow: no fetch here; pass { fetch }');
    const token = opts.token;
    this.sessionId = opts.sessionId ?? persistentSessionId(opts.storage ?? defaultStorage());
    this.ctx = {
      httpBase: base,
      wsBase: base.replace(/^http/, 'ws'),
      sessionId: this.sessionId,
      token: typeof token === 'function' ? token : () => token,
      WebSocket: WS,
      fetch: fetchFn,
      backoff: opts.backoff ?? {},
      document: opts.document === null ? undefined : (opts.document ?? g.document),
    };
  }

  /** Joins `name` on `/v1/ws` as this session. */
  room(name: string, opts?: RoomOptions): RoomPresence {
    const room: RoomPresence = new RoomPresence(this.ctx, name, opts, () => this.forget(room.socket));
    return this.track(room, room.socket, () => room.leave());
  }

  /** The global visitors socket (`/web`). */
  visitors(): Visitors {
    const v: Visitors = new Visitors(this.ctx, () => this.forget(v.socket));
    return this.track(v, v.socket, () => v.close());
  }

  /** A channels socket (`/ws?token=`). */
  channels(opts?: ChannelOptions): Channels {
    const c: Channels = new Channels(this.ctx, opts, () => this.forget(c.socket));
    return this.track(c, c.socket, () => c.close());
  }

  /** Keeps `playerId` online: ping socket, HTTP heartbeats while the socket is down. */
  online(playerId: string, opts?: OnlineOptions): OnlinePlayer {
    const p: OnlinePlayer = new OnlinePlayer(this.ctx, playerId, opts, () => this.forget(p.socket));
    return this.track(p, p.socket, () => void p.stop());
  }

  /** Waits on `/v1/ws/session/{id}` for the session's outcome. */
  waitForSession(sessionId: string, opts?: WaitOptions): Promise<SessionUpdate> {
    return waitForSession(this.ctx, sessionId, opts);
  }

  /** `POST /v1/sessions`: a new push session (usually the application back end does this). */
  createSession(body: { ttl_secs?: number; kind?: string } = {}): Promise<{ session_id: string; expires_at: number }> {
    return request(this.ctx, 'POST', '/v1/sessions', body);
  }

  /** Any JSON call on this server, with this client's token. */
  request<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    return request<T>(this.ctx, method, path, body, headers);
  }

  /** Leaves every room and closes every socket cleanly (close code 1000). */
  close(): void {
    this.closed = true;
    for (const close of [...this.closers]) close();
    this.closers.clear();
    this.connectionState.set('closed');
  }

  private track<T>(thing: T, socket: ReconnectingSocket, close: () => void): T {
    if (this.closed) throw new Error('ActiveNow: this client is closed');
    this.closers.add(close);
    this.sockets.set(socket, close);
    socket.state.subscribe(() => this.recompute());
    return thing;
  }

  private forget(socket: ReconnectingSocket): void {
    const close = this.sockets.get(socket);
    if (close) this.closers.delete(close);
    this.sockets.delete(socket);
    this.recompute();
  }

  private recompute(): void {
    if (this.closed) return;
    const states = [...this.sockets.keys()].map((s) => s.state.value);
    const live = states.filter((s) => s !== 'closed');
    let state: ConnectionState = 'closed';
    if (live.length) {
      if (live.every((s) => s === 'open')) state = 'open';
      else if (live.includes('reconnecting')) state = 'reconnecting';
      else state = 'connecting';
    }
    this.connectionState.set(state);
  }
}

export default ActiveNow;
