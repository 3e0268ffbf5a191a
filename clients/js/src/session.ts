// Session push (`/v1/ws/session/{id}`): a page waits for one outcome (QR login, payment,
// pairing). Resolves with the closing push; survives a dropped socket, because the server
// keeps a push that found no socket for the next one.

import { ActiveNowError, request, wsUrl, type Context } from './context.js';
import { ReconnectingSocket } from './socket.js';

export interface SessionUpdate {
  status: string;
  [field: string]: unknown;
}

export interface WaitOptions {
  /** Every push before the outcome (e.g. `scanned`). */
  onUpdate?: (u: SessionUpdate) => void;
  /** Gives up (rejects) after this long, in ms [default: no limit; the session expires]. */
  timeoutMs?: number;
  signal?: { aborted: boolean; addEventListener(t: 'abort', fn: () => void): void };
}

const FINAL = new Set(['confirmed', 'rejected', 'expired', 'not_found']);

export function waitForSession(ctx: Context, sessionId: string, opts: WaitOptions = {}): Promise<SessionUpdate> {
  return new Promise((resolve, reject) => {
    let last: SessionUpdate | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const finish = (err: Error | undefined, value?: SessionUpdate) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(value as SessionUpdate);
    };
    const path = `/v1/ws/session/${encodeURIComponent(sessionId)}`;
    const socket = new ReconnectingSocket(
      ctx.WebSocket,
      {
        url: () => wsUrl(ctx, path, {}),
        onMessage: (m) => {
          if (typeof m.status !== 'string') return;
          const u = m as SessionUpdate;
          if (u.status === 'connected') {
            socket.resetBackoff();
            return;
          }
          last = u;
          if (FINAL.has(u.status)) finish(undefined, u);
          else opts.onUpdate?.(u);
        },
        onClose: (code, _reason, opened) => {
          // 1000 after a push: that push was the outcome (a notify with close: true).
          if (code === 1000 && last) {
            finish(undefined, last);
            return false;
          }
          if (!opened) {
            // Refused before the upgrade (404 unknown, 410 finished...): ask over HTTP.
            void request<{ status: string }>(ctx, 'GET', `/v1/qr-login/status/${encodeURIComponent(sessionId)}`)
              .then((s) => {
                if (FINAL.has(s.status)) finish(undefined, s);
              })
              .catch((e: unknown) => {
                if (e instanceof ActiveNowError && e.status === 404) finish(undefined, { status: 'not_found' });
              });
          }
          return undefined;
        },
      },
      ctx.backoff,
    );
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => finish(new Error(`session ${sessionId}: no outcome within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    }
    if (opts.signal) {
      if (opts.signal.aborted) finish(new Error('aborted'));
      opts.signal.addEventListener('abort', () => finish(new Error('aborted')));
    }
  });
}
