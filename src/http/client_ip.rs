//! The address of the client behind a request: the peer, or, when the peer is a trusted
//! reverse proxy, the nearest untrusted address in `X-Forwarded-For`.

use std::net::IpAddr;

use ipnet::IpNet;
use salvo::Request;

/// The client's address, `None` only for peers without one (Unix sockets).
pub fn client_ip(req: &Request, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = req.remote_addr().clone().into_std()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    Some(resolve(peer, forwarded, trusted_proxies))
}

/// Walks `X-Forwarded-For` from the right while each hop is a trusted proxy.
fn resolve<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded.rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let cases: &[(&str, &[&str], &str, &str)] = &[
            (
                "203.0.113.9",
                &["1.2.3.4"],
                "203.0.113.9",
                "an untrusted peer cannot claim another address",
            ),
            (
                "10.0.0.1",
                &["198.51.100.7"],
                "198.51.100.7",
                "a trusted proxy names the client",
            ),
            (
                "10.0.0.1",
                &["6.6.6.6", "198.51.100.7", "10.0.0.2"],
                "198.51.100.7",
                "the nearest untrusted hop wins over a spoofed first entry",
            ),
            ("10.0.0.1", &[], "10.0.0.1", "no header: the proxy itself"),
            (
                "10.0.0.1",
                &["garbage"],
                "10.0.0.1",
                "an unparsable hop stops the walk",
            ),
        ];
        for (peer, forwarded, expected, why) in cases {
            assert_eq!(
                resolve(ip(peer), forwarded.iter().copied(), &trusted),
                ip(expected),
                "{why}"
            );
        }
    }
}
