//! Keeps webhooks from reaching the service's own network (SSRF).
//!
//! Unless `AKTI_WEBHOOK_ALLOW_PRIVATE` is set, a subscription URL may not name, and a
//! delivery may not connect to, a loopback, private, link-local, CGNAT, multicast, reserved
//! or otherwise non-public address. The check runs on the addresses DNS actually returned
//! at connect time ([`GuardedResolver`]), so a name that later resolves inward is caught.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0                                   // "this network"
        || (a == 100 && (64..128).contains(&b))     // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0)           // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))       // benchmarking 198.18.0.0/15
        || a >= 240) // reserved 240.0.0.0/4
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // Addresses that embed an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 =
        || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_public_v4(embedded_v4()); // IPv4-compatible ::a.b.c.d
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded_v4()); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return is_public_v4(v4); // 6to4 2002::/16
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00   // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80   // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0   // site-local fec0::/10 (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments 2001::/23
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
}

/// Whether a webhook may be delivered to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// Why a target was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(pub String);

/// How long a subscription's host name may take to resolve when it is created or changed.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Checks a subscription URL when it is created or changed: a literal address must be
/// public, and a name must not resolve only to blocked addresses. (A name that does not
/// resolve now, or not within [`LOOKUP_TIMEOUT`], is accepted; the connect-time check still
/// applies.)
pub async fn check_target(url: &url::Url) -> Result<(), Blocked> {
    let refused = || Blocked("the URL points to a private or reserved address".into());
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public_v4(ip).then_some(()).ok_or_else(refused),
        Some(url::Host::Ipv6(ip)) => is_public_v6(ip).then_some(()).ok_or_else(refused),
        Some(url::Host::Domain(name)) if is_loopback_name(name) => Err(refused()),
        Some(url::Host::Domain(name)) => {
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup = tokio::net::lookup_host((name, port));
            // A resolver that hangs must not hang the request; the name is then judged at
            // delivery time, like one that does not resolve.
            let Ok(resolved) = tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await else {
                return Ok(());
            };
            match resolved {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if !addrs.is_empty() && addrs.iter().all(|a| !is_public(a.ip())) {
                        Err(refused())
                    } else {
                        Ok(())
                    }
                }
                Err(_) => Ok(()),
            }
        }
        None => Err(Blocked("the URL has no host".into())),
    }
}

/// `localhost` and every name under it: loopback by definition (RFC 6761, section 6.3),
/// whatever a resolver answers for it, with or without the final dot.
fn is_loopback_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The DNS resolver of the webhook client: resolves as usual, then drops every address
/// that is not public. A name left with none fails to connect.
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Blocked(format!(
                    "{} resolves only to private or reserved addresses",
                    name.as_str()
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} must be allowed");
        }
    }

    #[tokio::test]
    async fn targets_are_checked_by_literal_address_and_by_name() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://[::1]/",
            "http://localhost/hook",
            "http://localhost./hook",
            "http://foo.localhost/hook",
            "http://a.b.LOCALHOST.:8080/",
            "http://169.254.169.254/latest",
        ] {
            assert!(
                check_target(&url::Url::parse(url).unwrap()).await.is_err(),
                "{url}"
            );
        }
        assert!(
            check_target(&url::Url::parse("https://8.8.8.8/hook").unwrap())
                .await
                .is_ok()
        );
    }

    /// The connect-time check: whatever a name resolves to, no private address survives.
    #[tokio::test]
    async fn the_resolver_drops_private_answers() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        let result = GuardedResolver.resolve(name).await;
        assert!(result.is_err(), "localhost must not resolve for webhooks");
    }
}
