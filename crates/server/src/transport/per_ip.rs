//! What one client IP may hold and how fast it may create things: open connections
//! (`MAX_CONNECTIONS_PER_IP`), WebSocket/Engine.IO handshakes
//! (`MAX_HANDSHAKES_PER_IP_PER_SECOND`), online logins and push sessions (their own
//! per-IP rates). IPv6 clients are counted per /64, the block one subscriber usually gets,
//! so that rotating through a prefix does not multiply the allowance.
//!
//! Memory: a connection count lives only while the IP has a connection open; a rate bucket
//! only until it has refilled (a few seconds after the IP's last request), and a table is
//! swept whenever it has doubled since its last sweep.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use crate::config::Settings;
use crate::transport::client_ip::{canonical, TrustedProxies};

const SHARDS: usize = 16;
/// A shard of a rate table is swept when it holds this many IPs (and again at each doubling).
const SWEEP_AT: usize = 1024;

/// The key an address is counted under: itself (IPv4), its /64 (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpKey(u128);

impl IpKey {
    pub fn of(ip: IpAddr) -> IpKey {
        match canonical(ip) {
            IpAddr::V4(v4) => IpKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => IpKey((u128::from(v6) >> 64) | (1 << 127)),
        }
    }

    fn shard(&self) -> usize {
        (BuildHasherDefault::<DefaultHasher>::default().hash_one(self) as usize) % SHARDS
    }
}

fn shards<T: Default>() -> Box<[Mutex<T>]> {
    (0..SHARDS).map(|_| Mutex::new(T::default())).collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Open connections per IP.
#[derive(Debug)]
pub struct ConnectionCounts {
    max: u64,
    shards: Box<[Mutex<HashMap<IpKey, u64>>]>,
}

/// One connection of an IP; dropping it frees the place.
#[derive(Debug)]
pub struct IpSlot {
    counts: Arc<ConnectionCounts>,
    key: IpKey,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut shard = lock(&self.counts.shards[self.key.shard()]);
        if let Some(n) = shard.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                shard.remove(&self.key);
            }
        }
    }
}

impl ConnectionCounts {
    /// A place for one more connection of `ip`; `None` when it holds `max` already.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = IpKey::of(ip);
        let mut shard = lock(&self.shards[key.shard()]);
        let n = shard.entry(key).or_insert(0);
        if *n >= self.max {
            if *n == 0 {
                shard.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(IpSlot {
            counts: self.clone(),
            key,
        })
    }

    /// Connections `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> u64 {
        let key = IpKey::of(ip);
        lock(&self.shards[key.shard()])
            .get(&key)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Default)]
struct RateShard {
    buckets: HashMap<IpKey, Bucket>,
    sweep_at: usize,
}

/// A token bucket per IP: `rate` per second on average, bursts of twice as many.
pub struct RateTable {
    rate: f64,
    burst: f64,
    shards: Box<[Mutex<RateShard>]>,
}

impl RateTable {
    /// `None` for a rate of 0 (no limit).
    pub fn new(per_second: u32) -> Option<RateTable> {
        (per_second > 0).then(|| {
            let rate = f64::from(per_second);
            RateTable {
                rate,
                burst: rate * 2.0,
                shards: shards(),
            }
        })
    }

    /// Takes one token of `ip`'s bucket; `false` when it is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let key = IpKey::of(ip);
        let now = Instant::now();
        let mut shard = lock(&self.shards[key.shard()]);
        let (rate, burst) = (self.rate, self.burst);
        let refill =
            |b: &Bucket| (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
        if shard.buckets.len() >= shard.sweep_at.max(SWEEP_AT) {
            shard.buckets.retain(|_, b| refill(b) < burst);
            shard.sweep_at = shard.buckets.len() * 2;
        }
        let bucket = shard.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        bucket.tokens = refill(bucket);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// IPs tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).buckets.len()).sum()
    }
}

/// Live objects per IP that hold their place until a known time (push sessions: their
/// expiry + retention): a list of those times per IP, pruned as they pass.
pub struct LiveCounts {
    max: usize,
    shards: Box<[Mutex<LiveShard>]>,
}

#[derive(Default)]
struct LiveShard {
    until_ms: HashMap<IpKey, Vec<u64>>,
    sweep_at: usize,
}

impl LiveCounts {
    /// `None` for a cap of 0 (no limit).
    pub fn new(max: u64) -> Option<LiveCounts> {
        (max > 0).then(|| LiveCounts {
            max: usize::try_from(max).unwrap_or(usize::MAX),
            shards: shards(),
        })
    }

    /// Takes a place for one more object of `ip` until `until_ms`; `false` when `ip` holds
    /// `max` live ones at `now_ms`.
    pub fn acquire(&self, ip: IpAddr, now_ms: u64, until_ms: u64) -> bool {
        let key = IpKey::of(ip);
        let mut shard = lock(&self.shards[key.shard()]);
        if shard.until_ms.len() >= shard.sweep_at.max(SWEEP_AT) {
            shard.until_ms.retain(|_, live| {
                live.retain(|&t| t > now_ms);
                !live.is_empty()
            });
            shard.sweep_at = shard.until_ms.len() * 2;
        }
        let live = shard.until_ms.entry(key).or_default();
        live.retain(|&t| t > now_ms);
        if live.len() >= self.max {
            return false;
        }
        live.push(until_ms);
        true
    }

    /// Gives back a place taken by [`acquire`](Self::acquire) (the creation failed).
    pub fn release(&self, ip: IpAddr, until_ms: u64) {
        let key = IpKey::of(ip);
        let mut shard = lock(&self.shards[key.shard()]);
        if let Some(live) = shard.until_ms.get_mut(&key) {
            if let Some(i) = live.iter().position(|&t| t == until_ms) {
                live.swap_remove(i);
            }
            if live.is_empty() {
                shard.until_ms.remove(&key);
            }
        }
    }

    /// IPs tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).until_ms.len()).sum()
    }
}

/// Every per-IP limit of the node, and the proxies whose forwarded addresses count.
pub struct IpLimits {
    pub trusted: TrustedProxies,
    /// `None`: `MAX_CONNECTIONS_PER_IP` is 0 (no limit).
    pub connections: Option<Arc<ConnectionCounts>>,
    pub handshakes: Option<RateTable>,
    pub online_logins: Option<RateTable>,
    pub session_creates: Option<RateTable>,
    /// `SESSION_MAX_PER_IP`: push sessions holding their place, per IP.
    pub live_sessions: Option<LiveCounts>,
}

impl IpLimits {
    pub fn new(settings: &Settings) -> IpLimits {
        let trusted = TrustedProxies::parse(&settings.trusted_proxies).unwrap_or_else(|e| {
            // `Settings::validate` refuses this at start-up; a test that skips it trusts nobody.
            tracing::warn!(error = %e, "TRUSTED_PROXIES is invalid; trusting no proxy");
            TrustedProxies::default()
        });
        let max = settings.max_connections_per_ip;
        IpLimits {
            trusted,
            connections: (max > 0).then(|| {
                Arc::new(ConnectionCounts {
                    max,
                    shards: shards(),
                })
            }),
            handshakes: RateTable::new(settings.max_handshakes_per_ip_per_second),
            online_logins: RateTable::new(settings.online_logins_per_ip_per_second),
            session_creates: RateTable::new(settings.session_creates_per_ip_per_second),
            live_sessions: LiveCounts::new(settings.session_max_per_ip),
        }
    }
}

/// `true` when `table` is off or `ip` still has a token.
pub fn allow(table: &Option<RateTable>, ip: IpAddr) -> bool {
    table.as_ref().is_none_or(|t| t.allow(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connections_are_counted_per_ip_and_freed_on_drop() {
        let counts = Arc::new(ConnectionCounts {
            max: 2,
            shards: shards(),
        });
        let a = counts.acquire(ip("1.2.3.4")).unwrap();
        let _b = counts.acquire(ip("1.2.3.4")).unwrap();
        assert!(counts.acquire(ip("1.2.3.4")).is_none());
        assert!(
            counts.acquire(ip("::ffff:1.2.3.4")).is_none(),
            "same client"
        );
        let _other = counts.acquire(ip("1.2.3.5")).unwrap();
        drop(a);
        assert_eq!(counts.held(ip("1.2.3.4")), 1);
        assert!(counts.acquire(ip("1.2.3.4")).is_some());
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            IpKey::of(ip("2001:db8::1")),
            IpKey::of(ip("2001:db8::ffff:1"))
        );
        assert_ne!(
            IpKey::of(ip("2001:db8::1")),
            IpKey::of(ip("2001:db8:0:1::1"))
        );
        assert_ne!(IpKey::of(ip("::1")), IpKey::of(ip("0.0.0.1")));
    }

    #[test]
    fn live_places_pass_with_their_time_and_empty_ips_are_forgotten() {
        let live = LiveCounts::new(2).unwrap();
        assert!(live.acquire(ip("1.2.3.4"), 0, 100));
        assert!(live.acquire(ip("1.2.3.4"), 0, 200));
        assert!(!live.acquire(ip("1.2.3.4"), 50, 300), "two live ones");
        assert!(live.acquire(ip("1.2.3.5"), 50, 300), "another IP");
        assert!(
            live.acquire(ip("1.2.3.4"), 100, 300),
            "the first one passed"
        );
        live.release(ip("1.2.3.5"), 300);
        assert_eq!(live.tracked(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn rates_refill_and_idle_ips_are_forgotten() {
        let t = RateTable::new(2).unwrap();
        for _ in 0..4 {
            assert!(t.allow(ip("9.9.9.9")));
        }
        assert!(!t.allow(ip("9.9.9.9")), "burst of twice the rate");
        assert!(t.allow(ip("9.9.9.8")), "another IP has its own bucket");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(t.allow(ip("9.9.9.9")));
        assert!(!t.allow(ip("9.9.9.9")));
        // Many IPs, each once; after they have refilled, a sweep forgets them.
        for i in 0..(SWEEP_AT * SHARDS * 2) as u32 {
            t.allow(IpAddr::from(i.to_be_bytes()));
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        for i in 0..(SWEEP_AT * SHARDS * 2) as u32 {
            t.allow(IpAddr::from((i + 1_000_000).to_be_bytes()));
        }
        assert!(t.tracked() < SWEEP_AT * SHARDS * 3, "{}", t.tracked());
    }
}
