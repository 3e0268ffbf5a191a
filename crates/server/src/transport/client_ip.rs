//! Who the client is: the peer address, or, when the peer is one of `TRUSTED_PROXIES`, the
//! address that proxy forwarded in `X-Forwarded-For`. Every place that needs a client's
//! address (per-IP limits, the online API's `ip`) reads it here, so a client that is not a
//! trusted proxy can never choose the address it is counted under.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

/// The client's address, resolved once per request by the HTTP server (see
/// [`crate::transport::serve`]) and kept in the request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    /// Requests that did not come through the server (router tests) are from 0.0.0.0.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::from([0, 0, 0, 0]))))
    }
}

/// One address range of `TRUSTED_PROXIES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The `TRUSTED_PROXIES` list: addresses and CIDR ranges whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<Cidr>);

/// `::ffff:1.2.3.4` is the IPv4 client 1.2.3.4 (a dual-stack listener reports it so).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn forwarded_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .or_else(|_| s.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(canonical)
}

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 192.168.1.7, fd00::/8`.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, prefix) = match item.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (item, None),
            };
            let net: IpAddr = addr
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or CIDR range"))?;
            let net = canonical(net);
            let max = if net.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => match p.parse::<u8>() {
                    Ok(p) if p <= max => p,
                    _ => return Err(format!("{item:?}: the prefix must be 0-{max}")),
                },
            };
            out.push(Cidr { net, prefix });
        }
        Ok(TrustedProxies(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy. Entries further left
    /// were written by the client and prove nothing; an unreadable entry ends the walk at
    /// the last trusted hop, so garbage cannot pick an address either.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = forwarded_entry(hop) else {
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return client;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_ranges() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,").unwrap();
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12::1")));
        assert!(t.contains(ip("::ffff:10.0.0.1")), "v4-mapped is v4");
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
    }

    #[test]
    fn forwarded_for_only_from_a_trusted_peer() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = xff(&["6.6.6.6"]);
        assert_eq!(
            t.client_ip(ip("9.9.9.9"), &h),
            ip("9.9.9.9"),
            "untrusted peer"
        );
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("6.6.6.6"));
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The client forged 1.1.1.1; the edge proxy appended the real 5.5.5.5, then an
        // inner proxy 10.0.0.9.
        let h = xff(&["1.1.1.1, 5.5.5.5", "10.0.0.9"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("5.5.5.5"));
        let h = xff(&["5.5.5.5:4711, garbage, 10.0.0.9"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.9"));
        let h = xff(&["[2001:db8::1]:80"]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("2001:db8::1"));
    }
}
