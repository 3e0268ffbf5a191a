// Typed events and a value stream: the two ways the SDK tells its caller what happened.

export type Listener<T> = (value: T) => void;

/** A minimal typed event emitter; `on` returns the function that removes the listener. */
export class Emitter<Events extends object> {
  private listeners = new Map<keyof Events, Set<Listener<never>>>();

  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  once<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    const off = this.on(event, (v) => {
      off();
      fn(v);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, fn: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(fn as Listener<never>);
  }

  /** Resolves with the next `event` (or the first one `accept` accepts). */
  next<K extends keyof Events>(event: K, accept: (v: Events[K]) => boolean = () => true): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (v) => {
        if (!accept(v)) return;
        off();
        resolve(v);
      });
    });
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      // One listener's exception must not stop the others or the socket loop.
      try {
        (fn as Listener<Events[K]>)(value);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}

/**
 * The current value and every later one. `subscribe` calls back at once with the current
 * value; `for await (const s of stream)` works too.
 */
export class ValueStream<T> {
  private fns = new Set<Listener<T>>();
  constructor(private current: T) {}

  get value(): T {
    return this.current;
  }

  subscribe(fn: Listener<T>): () => void {
    this.fns.add(fn);
    fn(this.current);
    return () => this.fns.delete(fn);
  }

  /** Resolves once the value satisfies `accept` (at once when it already does). */
  when(accept: (v: T) => boolean): Promise<T> {
    return new Promise((resolve) => {
      const off = this.subscribe((v) => {
        if (accept(v)) {
          queueMicrotask(() => off());
          resolve(v);
        }
      });
    });
  }

  set(value: T): void {
    if (value === this.current) return;
    this.current = value;
    for (const fn of [...this.fns]) fn(value);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    const queue: T[] = [this.current];
    let wake: (() => void) | undefined;
    const off = this.subscribe((v) => {
      queue.push(v);
      wake?.();
    });
    queue.shift(); // subscribe repeated the current value
    try {
      for (;;) {
        while (queue.length) yield queue.shift() as T;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      off();
    }
  }
}
