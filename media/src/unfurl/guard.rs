//! The guard against server-side request forgery: media fetches what strangers link to, from
//! inside the deployment's network, so nothing it fetches may be an address that is not on the
//! public internet (the cloud's metadata service at 169.254.169.254, a database on 10.0.0.5,
//! the service itself on 127.0.0.1).
//!
//! - Only `http` and `https`, on any port.
//! - A host name is resolved by [`GuardedResolver`], which refuses it if **any** of its
//!   addresses is not public (a name with one public and one private address could be steered
//!   to the private one), and hands reqwest exactly the addresses it checked: reqwest connects
//!   to those, so there is no second lookup a rebinding DNS server could answer differently.
//! - An address written in the URL is checked by [`Guard::check`] before every request, the
//!   first and each redirect's (reqwest's own redirects are off; the unfurler follows at most
//!   [`super::MAX_REDIRECTS`] itself).
//! - Proxies from the environment are never used (a proxy would resolve names itself).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a URL is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("only http and https links are previewed")]
    Scheme,
    #[error("the link has no host")]
    NoHost,
    #[error("{0} is not a public address")]
    Address(IpAddr),
}

/// IPv4 ranges that are not the public internet (IANA's special-purpose registry).
const V4_REFUSED: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // carrier-grade NAT (RFC 6598)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata services
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private (RFC 1918)
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private (RFC 1918)
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast
];

/// IPv6 ranges that are not the public internet; those that embed an IPv4 address are checked
/// by that address instead (see [`is_public`]).
const V6_REFUSED: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // unspecified, loopback, IPv4-compatible
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32), // Teredo (tunnels to any IPv4)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local (ULA)
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

/// Whether `ip` is on the public internet. An IPv6 address that carries an IPv4 one
/// (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) is judged
/// by the IPv4 address, since that is where it leads.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_REFUSED
            .iter()
            .any(|&(net, len)| Ipv4Net::new_assert(net, len).contains(&v4)),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            !V6_REFUSED
                .iter()
                .any(|&(net, len)| Ipv6Net::new_assert(net, len).contains(&v6))
        }
    }
}

/// The IPv4 address an IPv6 one leads to, if it is of a form that carries one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    let o = v6.octets();
    if o[..12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if o[..2] == [0x20, 0x02] {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// Checks URLs before each request. `allow` is one address (and port) let through although it
/// is not public: only tests set it, for their fixture web server on loopback.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub allow: Option<SocketAddr>,
}

impl Guard {
    /// Whether `url` may be requested: its scheme, and the address written in it if any (a
    /// host name is checked when it is resolved, by [`GuardedResolver`]).
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme);
        }
        let ip = match url.host() {
            None => return Err(Refused::NoHost),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        if self.allow == Some(SocketAddr::new(ip, port)) || is_public(ip) {
            Ok(())
        } else {
            Err(Refused::Address(ip))
        }
    }
}

/// Resolves host names for the unfurler's HTTP client, refusing a name any of whose addresses
/// is not public.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(public_addresses(name.as_str().to_owned()))
    }
}

/// The addresses of `host`, if every one of them is public.
async fn public_addresses(host: String) -> Result<Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        tracing::info!(%host, address = %bad.ip(), "a link's host resolves to an address that is not public");
        return Err(Box::new(Refused::Address(bad.ip())));
    }
    if addrs.is_empty() {
        return Err("the host has no address".into());
    }
    Ok(Box::new(addrs.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn loopback_private_link_local_cgnat_multicast_and_documentation_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_refused_ipv4_addresses_are_refused() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        assert!(public("::ffff:93.184.216.34"));
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111"] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn only_http_and_https_urls_pass() {
        let guard = Guard::default();
        assert_eq!(
            guard.check(&Url::parse("ftp://a.example/").unwrap()),
            Err(Refused::Scheme)
        );
        assert_eq!(
            guard.check(&Url::parse("file:///etc/passwd").unwrap()),
            Err(Refused::Scheme)
        );
        assert!(
            guard
                .check(&Url::parse("https://a.example/").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn addresses_in_urls_are_checked_in_every_spelling_the_url_parser_accepts() {
        let guard = Guard::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1:8080/",
        ] {
            assert!(
                matches!(
                    guard.check(&Url::parse(url).unwrap()),
                    Err(Refused::Address(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn the_test_allowance_lets_one_address_and_port_through() {
        let guard = Guard {
            allow: Some("127.0.0.1:4000".parse().unwrap()),
        };
        assert!(
            guard
                .check(&Url::parse("http://127.0.0.1:4000/page").unwrap())
                .is_ok()
        );
        assert!(
            guard
                .check(&Url::parse("http://127.0.0.1:4001/").unwrap())
                .is_err()
        );
        assert!(
            guard
                .check(&Url::parse("http://localhost:4000/").unwrap())
                .is_ok(),
            "names are the resolver's to refuse"
        );
    }
}
