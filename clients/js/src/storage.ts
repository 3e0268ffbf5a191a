// One session id per browser: kept in localStorage so that every tab (and every reload)
// presents the same identity and counts once. Node callers inject any storage.

/** The part of the Web Storage API the SDK uses. */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export const SESSION_KEY = 'activenow.sid';

/** An in-memory storage (Node, or a browser that refuses localStorage). */
export class MemoryStorage implements KeyValueStorage {
  private map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, value);
  }
}

export function defaultStorage(): KeyValueStorage {
  try {
    const ls = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
    if (ls) {
      // Safari private mode and sandboxed frames throw on use, not on access.
      ls.setItem('activenow.probe', '1');
      return ls;
    }
  } catch {
    // fall through
  }
  return new MemoryStorage();
}

export function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  let s = '';
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-a${s.slice(17, 20)}-${s.slice(20)}`;
}

/** The stored session id, minted and stored on first use. */
export function persistentSessionId(storage: KeyValueStorage): string {
  let id: string | null = null;
  try {
    id = storage.getItem(SESSION_KEY);
  } catch {
    // unreadable storage: a fresh id for this page
  }
  if (!id) {
    id = randomId();
    try {
      storage.setItem(SESSION_KEY, id);
    } catch {
      // quota or privacy mode: the id lives as long as the page
    }
  }
  return id;
}
