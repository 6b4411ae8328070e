//! SSRF protection. Outbound requests may only reach public addresses unless private
//! destinations are explicitly allowed (tests and local development). The check runs when a
//! channel is created and again inside the HTTP client's resolver at connection time, so a
//! name that later resolves elsewhere (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DestinationError {
    #[error("destination resolves to a loopback, private, link-local or metadata address, which is not allowed")]
    Forbidden,
    #[error("destination host does not resolve")]
    Unresolvable,
}

#[derive(Clone, Copy, Debug)]
pub struct DestinationPolicy {
    pub allow_private: bool,
}

impl DestinationPolicy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }

    /// Resolves the URL's host and refuses it if any address is not permitted.
    pub async fn check(&self, url: &url::Url) -> Result<(), DestinationError> {
        let host = url.host_str().ok_or(DestinationError::Unresolvable)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(443);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.permits(ip) { Ok(()) } else { Err(DestinationError::Forbidden) };
        }
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((host, port)).await.map_err(|_| DestinationError::Unresolvable)?.collect();
        if addrs.is_empty() {
            return Err(DestinationError::Unresolvable);
        }
        if addrs.iter().all(|a| self.permits(a.ip())) { Ok(()) } else { Err(DestinationError::Forbidden) }
    }

    /// The resolver the HTTP client uses: it drops every address the policy does not permit.
    pub fn resolver(self) -> Arc<dyn Resolve> {
        Arc::new(GuardedResolver(self))
    }
}

struct GuardedResolver(DestinationPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| policy.permits(a.ip())).collect();
            if addrs.is_empty() {
                return Err(Box::new(DestinationError::Forbidden) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg0 = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg0 & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254 (AWS metadata)
        || (seg0 & 0xffc0) == 0xfe80 // link local
        || (seg0 == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (seg0 == 0x0064 && ip.segments()[1] == 0xff9b)) // NAT64 can reach private IPv4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "255.255.255.255",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad} must not be public");
        }
        for good in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(good.parse().unwrap()), "{good} is public");
        }
    }

    #[tokio::test]
    async fn check_refuses_private_destinations_unless_allowed() {
        let strict = DestinationPolicy { allow_private: false };
        for url in ["http://127.0.0.1:9/x", "http://localhost:9/", "https://[::1]/", "http://169.254.169.254/latest"] {
            let u = url::Url::parse(url).unwrap();
            assert_eq!(strict.check(&u).await, Err(DestinationError::Forbidden), "{url}");
        }
        let open = DestinationPolicy { allow_private: true };
        assert_eq!(open.check(&url::Url::parse("http://127.0.0.1:9/").unwrap()).await, Ok(()));
    }
}
