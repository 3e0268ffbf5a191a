// Jittered exponential back-off: attempt n waits a random time in [d/2, d] where
// d = min(maxMs, minMs * 2^n), so a server restart does not bring every client back at once.

export interface BackoffOptions {
  /** First delay, in ms [default 500]. */
  minMs?: number;
  /** Largest delay, in ms [default 15000]. */
  maxMs?: number;
  /** Source of randomness in [0, 1) (tests inject one) [default Math.random]. */
  random?: () => number;
}

export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const min = opts.minMs ?? 500;
  const max = opts.maxMs ?? 15000;
  const random = opts.random ?? Math.random;
  const ceiling = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
