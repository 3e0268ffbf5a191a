// A WebSocket that reconnects with back-off until it is closed on purpose. Every protocol
// of the SDK (rooms, visitors, channels, online ping, session push) sits on one of these.

import { backoffDelay, type BackoffOptions } from './backoff.js';
import { ValueStream } from './events.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The part of the WebSocket API the SDK uses (browsers' WebSocket and the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketFactory = new (url: string) => WebSocketLike;

export interface SocketHooks {
  /** The URL of the next attempt (async so a fresh token can be fetched first). */
  url(): string | Promise<string>;
  onOpen?(): void;
  onMessage(msg: Record<string, unknown>): void;
  /** Called on every close; return false to stop reconnecting. */
  onClose?(code: number, reason: string, opened: boolean): boolean | void;
}

const OPEN = 1;

export class ReconnectingSocket {
  readonly state = new ValueStream<ConnectionState>('connecting');
  private ws: WebSocketLike | undefined;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly factory: WebSocketFactory,
    private readonly hooks: SocketHooks,
    private readonly backoff: BackoffOptions = {},
  ) {
    void this.connect();
  }

  get isOpen(): boolean {
    return this.ws?.readyState === OPEN;
  }

  /** Sends a JSON message; false when the socket is not open (nothing is queued). */
  send(msg: object): boolean {
    if (!this.ws || this.ws.readyState !== OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Marks the connection healthy: the next failure starts the back-off from the beginning. */
  resetBackoff(): void {
    this.attempt = 0;
  }

  /** Reconnects now, skipping any back-off wait (e.g. when a hidden tab becomes visible). */
  reconnectNow(): void {
    if (this.stopped || this.state.value !== 'reconnecting' || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.connect();
  }

  /** Closes for good with 1000: the server sees a clean leave; no reconnect follows. */
  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = () => {};
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
    this.state.set('closed');
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let url: string;
    try {
      url = await this.hooks.url();
    } catch {
      this.retry();
      return;
    }
    if (this.stopped) return;
    let ws: WebSocketLike;
    try {
      ws = new this.factory(url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.state.set('open');
      this.hooks.onOpen?.();
    };
    ws.onmessage = (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : String(ev.data);
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch {
        return;
      }
      if (msg && typeof msg === 'object') this.hooks.onMessage(msg as Record<string, unknown>);
    };
    // Browsers fire error then close; all handling is in onclose.
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      const again = this.hooks.onClose?.(ev.code, ev.reason, opened);
      if (again === false || this.stopped) {
        this.stopped = true;
        this.state.set('closed');
        return;
      }
      this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.state.set('reconnecting');
    const delay = backoffDelay(this.attempt++, this.backoff);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, delay);
  }
}
