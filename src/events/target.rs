//! Which addresses a webhook may be delivered to.
//!
//! An endpoint URL is configuration, but its host's DNS answers are not: a name that resolves
//! to 169.254.169.254 (the cloud metadata service), to loopback or to a private network
//! would let whoever controls that DNS make the server POST into its own network. So the
//! check is made on the addresses the HTTP client actually connects to: [`GuardedResolver`]
//! is the client's only resolver and hands it only allowed addresses (a DNS answer that
//! changes between a check and the connect cannot slip through), and [`check_literal`]
//! covers URLs whose host is an IP address, which the client connects to without resolving.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A target whose every address is refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "target refused: {host} resolves only to loopback, link-local, private or unspecified \
     addresses (webhooks.allow_private_targets is false)"
)]
pub struct TargetRefused {
    pub host: String,
}

/// Whether a delivery may connect to `ip`: public unicast addresses only.
pub fn is_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_allowed_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // `::ffff:127.0.0.1` reaches 127.0.0.1.
            Some(v4) => is_allowed_v4(v4),
            None => is_allowed_v6(v6),
        },
    }
}

fn is_allowed_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // 0.0.0.0/8 ("this network") and 100.64.0.0/10 (carrier-grade NAT, cloud internals).
        || a == 0
        || (a == 100 && (64..128).contains(&b)))
}

fn is_allowed_v6(ip: Ipv6Addr) -> bool {
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unicast_link_local()
        || ip.is_unique_local())
}

/// Refuses a URL host that is a refused IP address (names are checked by the resolver).
pub fn check_literal(url: &url::Url) -> Result<(), TargetRefused> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_allowed(ip) {
        Ok(())
    } else {
        Err(TargetRefused {
            host: ip.to_string(),
        })
    }
}

/// The system resolver, minus the refused addresses.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| is_allowed(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(TargetRefused { host }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The refusal somewhere in `error`'s chain of causes, if that is why it failed.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a TargetRefused> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refused) = error.downcast_ref::<TargetRefused>() {
            return Some(refused);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private 10/8"),
            ("172.16.0.1", "private 172.16/12"),
            ("172.31.255.255", "private 172.16/12"),
            ("192.168.1.1", "private 192.168/16"),
            ("169.254.169.254", "link-local: the cloud metadata service"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("::1", "IPv6 loopback"),
            ("::", "IPv6 unspecified"),
            ("fe80::1", "IPv6 link-local"),
            ("fd00::1", "IPv6 unique local fc00::/7"),
            ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
            ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
        ] {
            assert!(!is_allowed(ip.parse().unwrap()), "{ip}: {why}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["93.184.215.14", "172.32.0.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_allowed(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_names_are_left_to_the_resolver() {
        let refused = |url: &str| check_literal(&url.parse().unwrap()).is_err();
        assert!(refused("http://127.0.0.1:8080/hook"));
        assert!(refused("http://[::1]/hook"));
        assert!(refused("http://169.254.169.254/latest/meta-data"));
        assert!(!refused("https://8.8.8.8/hook"));
        assert!(
            !refused("https://localhost/hook"),
            "a name: the resolver decides"
        );
    }
}
