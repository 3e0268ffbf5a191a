// What every part of one client shares: addresses, credentials, the session id, and the
// platform pieces (WebSocket, fetch, document) that tests and Node inject.

import type { BackoffOptions } from './backoff.js';
import type { WebSocketFactory } from './socket.js';

/** The part of `document` used to pause heartbeats in hidden tabs. */
export interface VisibilitySource {
  readonly visibilityState: string;
  addEventListener(type: 'visibilitychange', fn: () => void): void;
  removeEventListener(type: 'visibilitychange', fn: () => void): void;
}

export type FetchLike = (url: string, init?: {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}) => Promise<{ status: number; ok: boolean; json(): Promise<unknown>; text(): Promise<string> }>;

export class ActiveNowError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ActiveNowError';
  }
}

export interface Context {
  httpBase: string;
  wsBase: string;
  sessionId: string;
  token: () => string | undefined;
  WebSocket: WebSocketFactory;
  fetch: FetchLike;
  backoff: BackoffOptions;
  document: VisibilitySource | undefined;
}

/**
 * The session id this client claims, or `undefined` with a token: under CLIENT_AUTH=jwt the
 * server takes the identity from the token's subject and refuses a different claimed id.
 */
export function claimedSession(ctx: Context): string | undefined {
  return ctx.token() ? undefined : ctx.sessionId;
}

/** `path` on the server's WebSocket address, with the token as `?token=` when one is set. */
export function wsUrl(ctx: Context, path: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  const token = ctx.token();
  if (token) q.set('token', token);
  const s = q.toString();
  return `${ctx.wsBase}${path}${s ? `?${s}` : ''}`;
}

/** One JSON call; a non-2xx answer becomes an {@link ActiveNowError} with the server's code. */
export async function request<T>(
  ctx: Context,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const h: Record<string, string> = { ...headers };
  const token = ctx.token();
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await ctx.fetch(`${ctx.httpBase}${path}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!res.ok) {
    // Bodies are `{error: code, message}` (ActiveNow), `{error: "text"}` (online API) or
    // `{type: "error", error: {code, message}}` (channels).
    const err = (parsed && typeof parsed === 'object' ? parsed : {}) as {
      error?: string | { code?: string; message?: string };
      message?: string;
    };
    const nested = typeof err.error === 'object' ? err.error : undefined;
    const flat = typeof err.error === 'string' ? err.error : undefined;
    const message = err.message ?? nested?.message ?? flat ?? `HTTP ${res.status}`;
    const code = nested?.code ?? (err.message ? flat : undefined);
    throw new ActiveNowError(`${method} ${path}: ${message}`, res.status, code);
  }
  return parsed as T;
}
