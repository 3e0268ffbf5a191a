// The /demo page: the seed-0 test page on the SDK. Joins a room as a session, shows every
// hello/sync/join/update/leave, the member list, the site's visitors, and posts updates.
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let client;
  let room;
  let visitors;

  const log = (kind, detail) => {
    const li = document.createElement('li');
    li.dataset.kind = kind;
    li.textContent = `${new Date().toLocaleTimeString()} ${kind} ${JSON.stringify(detail)}`;
    $('log').prepend(li);
    while ($('log').children.length > 200) $('log').lastChild.remove();
  };

  const setState = (s) => {
    $('state').textContent = s;
    $('state').dataset.state = s;
  };

  const showMembers = (list) => {
    $('members').replaceChildren(
      ...list.map((m) => {
        const li = document.createElement('li');
        li.dataset.identity = m.identity;
        const extra = [m.displayName, m.position].filter((v) => v !== undefined).join(' · ');
        li.textContent = m.identity + (m.identity === client.sessionId ? ' (you)' : '') + (extra ? ` — ${extra}` : '');
        return li;
      }),
    );
  };

  const setJoined = (joined) => {
    $('join').disabled = joined;
    $('leave').disabled = !joined;
    $('hb').disabled = !joined;
    $('update').disabled = !joined;
    $('room').disabled = joined;
    $('sid').disabled = joined;
  };

  function start(roomName, sessionId) {
    client = new ActiveNow(sessionId ? { sessionId } : {});
    $('sid').value = client.sessionId;
    $('me').textContent = client.sessionId;
    client.connectionState.subscribe(setState);
    visitors = client.visitors();
    visitors.on('count', (n) => ($('visitors').textContent = n));
    if (!roomName) return;
    room = client.room(roomName);
    room.on('raw', (m) => log(m.type, m.data ?? m));
    room.on('count', (n) => ($('count').textContent = n));
    room.on('members', showMembers);
    setJoined(true);
    const url = new URL(location.href);
    url.searchParams.set('room', roomName);
    history.replaceState(null, '', url);
    $('second-tab').href = url.pathname + url.search;
  }

  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('room').value.trim();
    const sid = $('sid').value.trim();
    if (client) client.close();
    // The typed id is kept for the other tabs of this browser, so they count once.
    try {
      if (sid) localStorage.setItem('activenow.sid', sid);
    } catch {}
    start(name, sid || undefined);
  });

  $('leave').addEventListener('click', () => {
    room?.leave();
    room = undefined;
    $('count').textContent = '–';
    $('members').replaceChildren();
    setJoined(false);
    log('left', { room: $('room').value });
  });

  $('hb').addEventListener('click', () => log('hb sent', { ok: room?.heartbeat() ?? false }));

  $('update-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const patch = {};
    const name = $('display-name').value.trim();
    const pos = $('position').value.trim();
    if (name) patch.displayName = name;
    if (pos !== '') {
      const n = Number(pos);
      if (!Number.isFinite(n)) {
        $('update-result').textContent = 'position must be a number';
        return;
      }
      patch.position = n;
    }
    try {
      await room.update(patch);
      $('update-result').textContent = 'sent';
    } catch (err) {
      $('update-result').textContent = err.message;
    }
  });

  // /demo?room=R joins at once (the second-tab link); plain /demo waits for the button.
  $('room').value = params.get('room') || 'demo';
  start(params.get('room'), undefined);
})();
