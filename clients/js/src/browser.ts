// The browser bundle's entry: `window.ActiveNow` is the client class, and the helpers hang
// off it (`ActiveNow.MemoryStorage`, `ActiveNow.backoffDelay`, ...).
import * as api from './index.js';

const g = globalThis as Record<string, unknown>;
g.ActiveNow = Object.assign(api.ActiveNow, api);
