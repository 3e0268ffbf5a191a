-- {count, connections, since (ms, or false when the room is empty)}.
ensure_order()
return {count(), redis.call('HLEN', M), redis.call('GET', T)}
