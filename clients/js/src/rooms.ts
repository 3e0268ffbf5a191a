// A room on `/v1/ws`: hello, sync, join/update/leave, the member list kept locally and
// reconciled from `GET /v1/activity/presence` on every (re)connect, heartbeats every
// max(5, floor(ttl/2)) s, paused while the tab is hidden (when asked to).

import { Emitter } from './events.js';
import { claimedSession, request, wsUrl, type Context } from './context.js';
import { ReconnectingSocket } from './socket.js';

export interface Member {
  identity: string;
  joinedAt: number;
  updatedAt: number;
  displayName?: string;
  position?: number;
}

export interface Hello {
  sid: string;
  ttl: number;
  count: number;
}

export interface RoomEvents {
  hello: Hello;
  /** The room's count (identities, not tabs), after hello and on every change. */
  count: number;
  join: Member;
  update: Member;
  leave: { identity: string };
  /** The whole member list, after each reconcile and each event. */
  members: Member[];
  error: { code: string; message: string };
  /** Every frame as received (for logs and debugging pages). */
  raw: Record<string, unknown>;
}

export interface RoomOptions {
  /** Heartbeat period override, in ms [default: max(5, floor(ttl/2)) s from hello]. */
  heartbeatMs?: number;
  /**
   * While the tab is hidden: 'pause' stops heartbeats, so a member whose only tab is in the
   * background drops out after the TTL (shown as away) and comes back when the tab is
   * shown; 'keep' heartbeats anyway [default 'pause'].
   */
  whenHidden?: 'pause' | 'keep';
}

interface PresenceEntry {
  identity: string;
  joined_at: number;
  updated_at: number;
  display_name?: string;
  position?: number;
}

export function heartbeatPeriodMs(ttlSeconds: number): number {
  return Math.max(5, Math.floor((ttlSeconds || 30) / 2)) * 1000;
}

export class RoomPresence extends Emitter<RoomEvents> {
  count = 0;
  ttl = 0;
  /** The identity the server said hello as (the token's subject under CLIENT_AUTH=jwt). */
  sid = '';
  readonly members = new Map<string, Member>();
  readonly socket: ReconnectingSocket;
  private hb: ReturnType<typeof setInterval> | undefined;
  /** Events that arrive while the HTTP list is loading, applied on top of it. */
  private pending: Array<Record<string, unknown>> | undefined;
  private generation = 0;
  private readonly onVisibility = () => this.visibilityChanged();

  constructor(
    private readonly ctx: Context,
    readonly name: string,
    private readonly opts: RoomOptions = {},
    private readonly onClosed: () => void = () => {},
  ) {
    super();
    this.socket = new ReconnectingSocket(
      ctx.WebSocket,
      {
        url: () => wsUrl(ctx, '/v1/ws', { room: name, socket_session_id: claimedSession(ctx) }),
        onMessage: (m) => this.receive(m),
        onClose: () => this.stopHeartbeats(),
      },
      ctx.backoff,
    );
    ctx.document?.addEventListener('visibilitychange', this.onVisibility);
  }

  get state() {
    return this.socket.state;
  }

  /** Resolves with the next hello (at once when this room already said hello). */
  ready(): Promise<Hello> {
    if (this.socket.isOpen && this.ttl > 0) {
      return Promise.resolve({ sid: this.sid, ttl: this.ttl, count: this.count });
    }
    return this.next('hello');
  }

  /** Sends one heartbeat now; false when the socket is not open. */
  heartbeat(): boolean {
    return this.socket.send({ type: 'hb' });
  }

  /** `POST /v1/activity/presence/update` as this session: broadcast as an update event. */
  update(patch: { displayName?: string; position?: number }): Promise<unknown> {
    const body: Record<string, unknown> = { room_name: this.name };
    if (patch.displayName !== undefined) body.display_name = patch.displayName;
    if (patch.position !== undefined) body.position = patch.position;
    const claimed = claimedSession(this.ctx);
    return request(
      this.ctx,
      'POST',
      '/v1/activity/presence/update',
      body,
      claimed === undefined ? {} : { 'x-socket-session-id': claimed },
    );
  }

  /** Leaves the room (clean close: the others see a leave once no other tab holds it). */
  leave(): void {
    this.stopHeartbeats();
    this.ctx.document?.removeEventListener('visibilitychange', this.onVisibility);
    this.socket.close();
    this.onClosed();
  }

  private receive(m: Record<string, unknown>): void {
    this.emit('raw', m);
    switch (m.type) {
      case 'hello': {
        this.sid = String(m.sid);
        this.ttl = Number(m.ttl) || 30;
        this.count = Number(m.count) || 0;
        this.socket.resetBackoff();
        this.startHeartbeats();
        this.emit('hello', { sid: this.sid, ttl: this.ttl, count: this.count });
        this.emit('count', this.count);
        void this.reconcile();
        return;
      }
      case 'sync':
        this.count = Number(m.count) || 0;
        this.emit('count', this.count);
        return;
      case 'error':
        this.emit('error', { code: String(m.code), message: String(m.message) });
        return;
      case 'ACTIVITY_JOIN_PRESENCE':
      case 'ACTIVITY_UPDATE_PRESENCE':
      case 'ACTIVITY_LEAVE_PRESENCE':
        if (this.pending) this.pending.push(m);
        else this.apply(m, true);
        return;
    }
  }

  /** Replaces the member list with the server's, then replays what arrived meanwhile. */
  private async reconcile(): Promise<void> {
    const gen = ++this.generation;
    this.pending = [];
    let list: PresenceEntry[] | undefined;
    try {
      list = await request<PresenceEntry[]>(
        this.ctx,
        'GET',
        `/v1/activity/presence?room_name=${encodeURIComponent(this.name)}`,
      );
    } catch {
      // Keep the events-only view; the next reconnect tries again.
    }
    if (gen !== this.generation) return;
    if (list) {
      this.members.clear();
      for (const e of list) {
        this.members.set(e.identity, {
          identity: e.identity,
          joinedAt: e.joined_at,
          updatedAt: e.updated_at,
          ...(e.display_name !== undefined && { displayName: e.display_name }),
          ...(e.position !== undefined && { position: e.position }),
        });
      }
    }
    const pending = this.pending ?? [];
    this.pending = undefined;
    for (const m of pending) this.apply(m, false);
    this.emit('members', [...this.members.values()]);
  }

  private apply(m: Record<string, unknown>, announce: boolean): void {
    const d = (m.data ?? {}) as Record<string, unknown>;
    const identity = String(d.identity ?? '');
    if (m.type === 'ACTIVITY_LEAVE_PRESENCE') {
      this.members.delete(identity);
      this.emit('leave', { identity });
    } else {
      const prev = this.members.get(identity);
      const member: Member = {
        identity,
        joinedAt: Number(d.joinedAt ?? prev?.joinedAt ?? Date.now()),
        updatedAt: Number(d.updatedAt ?? d.joinedAt ?? Date.now()),
      };
      const name = d.displayName ?? prev?.displayName;
      const position = d.position ?? prev?.position;
      if (name !== undefined) member.displayName = String(name);
      if (position !== undefined) member.position = Number(position);
      this.members.set(identity, member);
      this.emit(m.type === 'ACTIVITY_JOIN_PRESENCE' ? 'join' : 'update', member);
    }
    if (announce) this.emit('members', [...this.members.values()]);
  }

  private hidden(): boolean {
    return (this.opts.whenHidden ?? 'pause') === 'pause' && this.ctx.document?.visibilityState === 'hidden';
  }

  private startHeartbeats(): void {
    this.stopHeartbeats();
    if (this.hidden()) return;
    const period = this.opts.heartbeatMs ?? heartbeatPeriodMs(this.ttl);
    this.hb = setInterval(() => this.heartbeat(), period);
  }

  private stopHeartbeats(): void {
    if (this.hb) clearInterval(this.hb);
    this.hb = undefined;
  }

  private visibilityChanged(): void {
    if (this.hidden()) {
      this.stopHeartbeats();
      return;
    }
    // Shown again: refresh at once (the session may have expired meanwhile; a heartbeat
    // brings it back) and reconnect without waiting out a long back-off.
    if (this.socket.isOpen) {
      this.heartbeat();
      this.startHeartbeats();
    } else {
      this.socket.reconnectNow();
    }
  }
}
