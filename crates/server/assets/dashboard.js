// The /dashboard page: one GET of the last hour, then a Server-Sent Events stream of
// snapshots (read with fetch so the API key goes in a header, never in a URL). The page
// joins no room: watching it makes nobody a member of anything.
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const KEY = 'activenow.dashboard.key';
  let history = { interval_ms: 60000, capacity: 60, samples: [] };
  let live;
  let attempt = 0;

  // #key=... in a link: kept for this tab, then removed from the address bar.
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('key');
  if (fromHash) {
    sessionStorage.setItem(KEY, fromHash);
    window.history.replaceState(null, '', location.pathname + location.search);
  }
  const headers = () => {
    const k = sessionStorage.getItem(KEY);
    return k ? { authorization: `Bearer ${k}` } : {};
  };

  const setState = (s) => {
    $('state').textContent = s;
    $('state').dataset.state = s;
  };

  function askForKey(message) {
    setState('closed');
    $('key-form').hidden = false;
    $('key-error').textContent = message || '';
    $('key').focus();
  }

  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('key').value);
    $('key-form').hidden = true;
    void start();
  });

  async function start() {
    const res = await fetch('/v1/stats/history', { headers: headers() }).catch(() => undefined);
    if (res && res.status === 401) return askForKey(sessionStorage.getItem(KEY) ? 'that key was refused' : '');
    if (res && res.ok) history = await res.json();
    void stream();
  }

  async function stream() {
    setState(attempt ? 'reconnecting' : 'connecting');
    try {
      const res = await fetch('/v1/stats/stream', { headers: { ...headers(), accept: 'text/event-stream' } });
      if (res.status === 401) return askForKey('that key was refused');
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
          if (!data) continue;
          attempt = 0;
          setState('open');
          render(JSON.parse(data));
        }
      }
    } catch {
      // fall through to the retry
    }
    // Jittered exponential back-off, as the SDK does.
    const ceiling = Math.min(15000, 500 * 2 ** attempt++);
    setState('reconnecting');
    setTimeout(stream, ceiling / 2 + Math.random() * (ceiling / 2));
  }

  function render(s) {
    $('backend').textContent = s.backend;
    $('visitors-now').textContent = s.visitors.now;
    $('visitors-peak').textContent = s.visitors.peak;
    $('visitors-distinct').textContent = s.visitors.distinct;
    $('room-count').textContent = s.room_count;
    $('members').textContent = s.members;
    $('conn-total').textContent = s.connections_total;
    $('connections').replaceChildren(
      ...Object.entries(s.connections).map(([protocol, n]) => {
        const li = document.createElement('li');
        li.dataset.protocol = protocol;
        li.textContent = `${protocol}: ${n}`;
        return li;
      }),
    );
    const top = Math.max(1, ...s.rooms.map((r) => r.count));
    $('rooms').replaceChildren(
      ...s.rooms.map((r) => {
        const li = document.createElement('li');
        li.className = 'bar';
        li.dataset.room = r.room;
        const name = document.createElement('span');
        name.className = 'name';
        name.textContent = r.room;
        name.title = r.room;
        const fill = document.createElement('span');
        fill.className = 'fill';
        fill.style.width = `${Math.round((r.count / top) * 40)}%`; // CSSOM, allowed by the CSP
        const n = document.createElement('span');
        n.className = 'n';
        n.textContent = r.count;
        li.append(name, fill, n);
        return li;
      }),
    );
    $('rooms-empty').hidden = s.rooms.length > 0;
    const point = { ts: s.ts, visitors: s.visitors.now, members: s.members, rooms: s.room_count, connections: s.connections_total };
    // The live point becomes a kept one once a sample interval has passed since the last.
    const last = history.samples[history.samples.length - 1];
    if (!last || point.ts - last.ts >= history.interval_ms) {
      history.samples.push(point);
      if (history.samples.length > history.capacity) history.samples.shift();
      live = undefined;
    } else {
      live = point;
    }
    chart();
  }

  function chart() {
    const svg = $('chart');
    const points = live ? [...history.samples, live] : history.samples;
    const W = 800, H = 220, L = 36, R = 8, T = 10, B = 22;
    const now = points.length ? points[points.length - 1].ts : Date.now();
    const span = history.interval_ms * history.capacity;
    const from = now - span;
    const max = Math.max(1, ...points.flatMap((p) => [p.visitors, p.members, p.connections]));
    const x = (ts) => L + ((ts - from) / span) * (W - L - R);
    const y = (v) => T + (1 - v / max) * (H - T - B);
    const el = (name, attrs, text) => {
      const e = document.createElementNS(SVG, name);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const parts = [
      el('line', { class: 'axis', x1: L, y1: y(0), x2: W - R, y2: y(0) }),
      el('line', { class: 'axis', x1: L, y1: T, x2: L, y2: y(0) }),
      el('text', { x: 4, y: y(max) + 4 }, String(max)),
      el('text', { x: 4, y: y(0) }, '0'),
      el('text', { x: L, y: H - 4 }, `-${Math.round(span / 60000)} min`),
      el('text', { x: W - R - 24, y: H - 4 }, 'now'),
    ];
    for (const series of ['connections', 'visitors', 'members']) {
      const visible = points.filter((p) => p.ts >= from);
      parts.push(el('polyline', { class: series, points: visible.map((p) => `${x(p.ts).toFixed(1)},${y(p[series]).toFixed(1)}`).join(' ') }));
      const p = visible[visible.length - 1];
      if (p) parts.push(el('circle', { class: `${series} point last`, cx: x(p.ts), cy: y(p[series]), r: 3, 'data-value': p[series] }));
    }
    svg.replaceChildren(svg.querySelector('desc'), ...parts);
    const p = points[points.length - 1];
    $('chart-summary').textContent = p
      ? `${points.length} points; latest: ${p.visitors} visitors, ${p.members} room members, ${p.connections} sockets.`
      : 'No samples yet.';
  }

  void start();
})();
