//! The client address behind reverse proxies. `X-Forwarded-For` is trusted
//! only when the TCP peer is a configured proxy (`issuer.trusted_proxies`,
//! addresses or CIDR ranges); the client is then the right-most address in
//! the header that is not itself a trusted proxy. Anyone else's header is
//! ignored, so a client cannot pick its own rate-limit key.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// Addresses and ranges whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

fn prefix_matches(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    fn masked(bytes: &[u8], bits: u8) -> Vec<u8> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let keep = (bits as usize).saturating_sub(i * 8).min(8);
                if keep == 0 {
                    0
                } else {
                    b & (0xffu8 << (8 - keep))
                }
            })
            .collect()
    }
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => masked(&n.octets(), bits) == masked(&a.octets(), bits),
        (IpAddr::V6(n), IpAddr::V6(a)) => masked(&n.octets(), bits) == masked(&a.octets(), bits),
        _ => false,
    }
}

impl TrustedProxies {
    /// Parses `["10.0.0.1", "192.168.0.0/16", "::1"]`.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut v = Vec::new();
        for e in entries {
            let (addr, bits) = match e.trim().split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (e.trim(), None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("trusted_proxies: {e:?} is not an address or CIDR range"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("trusted_proxies: bad prefix length in {e:?}"))?,
                None => max,
            };
            v.push((ip, bits));
        }
        Ok(Self(v))
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(n, b)| prefix_matches(*n, *b, ip))
    }

    /// The client address of a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect();
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !self.contains(*ip))
            .or_else(|| hops.first().copied())
            .unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_proxies() {
        let p = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        let h = xff("203.0.113.9, 10.0.0.5");
        assert_eq!(
            p.client(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            p.client(stranger, &h),
            stranger,
            "a client's own header is ignored"
        );
        assert_eq!(p.client(proxy, &HeaderMap::new()), proxy);
        // A spoofed left-most entry does not win over the proxy's own append.
        let h = xff("1.1.1.1, 203.0.113.9");
        assert_eq!(
            p.client(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            p.client(v6, &xff("2001:db8::1")),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example".into()]).is_err());
        assert!(p.contains("::ffff:10.9.9.9".parse().unwrap()));
    }
}
