//! Outbound targets: which addresses Modelwatch may send requests to on an admin's behalf
//! (alert channel URLs, scrape targets). A URL typed into a form must not turn the server into
//! a proxy into its own network (SSRF), so:
//!
//! - link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata endpoints
//!   (169.254.169.254, fd00:ec2::254, 100.100.100.200, 168.63.129.16, …) are refused always,
//!   whatever the configuration says: nothing Modelwatch talks to lives there, and the
//!   instance's cloud credentials do;
//! - loopback, unspecified, private (RFC 1918, fc00::/7), shared (100.64.0.0/10) and other
//!   non-public ranges are refused unless the administrator allows them
//!   (`--allow-private-targets all` or a list of CIDRs): scraping a model server on the same
//!   network is the point of scrape targets, but it has to be a decision;
//! - IPv6 forms that carry an IPv4 address (`::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//!   `2002::/16`) count as that IPv4 address.
//!
//! `TargetPolicy` is the one place these rules live. The engine checks literal hosts when a URL
//! is saved (`check_url`: the `url` crate normalises `2130706433`, `0x7f.1`, `127.1` to
//! 127.0.0.1); the server applies the same policy to every address a name resolves to when it
//! connects (so a name that resolves, or later rebinds, to 127.0.0.1 is caught) and to redirects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::IpNet;

/// The flag and variable that allow internal addresses, named in every refusal.
pub const ALLOW_FLAG: &str = "--allow-private-targets (MODELWATCH_ALLOW_PRIVATE_TARGETS)";

/// What an address is, as far as reaching it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Public,
    Loopback,
    Unspecified,
    Private,
    /// Carrier-grade NAT space, 100.64.0.0/10.
    Shared,
    /// Documentation, benchmarking, multicast, broadcast and other non-public ranges.
    Reserved,
    /// Refused always.
    LinkLocal,
    /// A cloud provider's instance metadata endpoint. Refused always.
    Metadata,
}

impl AddressKind {
    /// Refused whatever the configuration allows.
    pub fn never_allowed(self) -> bool {
        matches!(self, AddressKind::LinkLocal | AddressKind::Metadata)
    }

    fn describe(self) -> &'static str {
        match self {
            AddressKind::Public => "public",
            AddressKind::Loopback => "loopback",
            AddressKind::Unspecified => "unspecified",
            AddressKind::Private => "private-network",
            AddressKind::Shared => "shared (CGNAT)",
            AddressKind::Reserved => "reserved",
            AddressKind::LinkLocal => "link-local",
            AddressKind::Metadata => "cloud metadata",
        }
    }
}

/// The non-public ranges, most specific first (the first match names the kind).
static RANGES: LazyLock<Vec<(IpNet, AddressKind)>> = LazyLock::new(|| {
    use AddressKind::*;
    let table: &[(&str, AddressKind)] = &[
        // AWS, GCP, Azure, OpenStack, DigitalOcean… (169.254.169.254); AWS ECS task metadata;
        // AWS IMDS over IPv6; Alibaba Cloud; Azure WireServer; Oracle Cloud (classic).
        ("169.254.169.254/32", Metadata),
        ("169.254.170.2/32", Metadata),
        ("fd00:ec2::254/128", Metadata),
        ("100.100.100.200/32", Metadata),
        ("168.63.129.16/32", Metadata),
        ("192.0.0.192/32", Metadata),
        ("169.254.0.0/16", LinkLocal),
        ("fe80::/10", LinkLocal),
        ("127.0.0.0/8", Loopback),
        ("::1/128", Loopback),
        // 0.0.0.0 reaches the local host on Linux.
        ("0.0.0.0/8", Unspecified),
        ("::/128", Unspecified),
        ("10.0.0.0/8", Private),
        ("172.16.0.0/12", Private),
        ("192.168.0.0/16", Private),
        ("fc00::/7", Private),
        ("fec0::/10", Private),
        ("100.64.0.0/10", Shared),
        ("192.0.0.0/24", Reserved),
        ("192.0.2.0/24", Reserved),
        ("198.18.0.0/15", Reserved),
        ("198.51.100.0/24", Reserved),
        ("203.0.113.0/24", Reserved),
        ("224.0.0.0/4", Reserved),
        ("240.0.0.0/4", Reserved),
        // IPv4-compatible (deprecated) and discard-only IPv6; documentation; multicast.
        ("::/96", Reserved),
        ("100::/64", Reserved),
        ("2001:db8::/32", Reserved),
        ("ff00::/8", Reserved),
    ];
    table.iter().map(|(net, kind)| (net.parse().expect("valid range"), *kind)).collect()
});

/// The IPv4 address an IPv6 address stands for, when it carries one that a connection may end
/// up at: IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    static NAT64: LazyLock<IpNet> = LazyLock::new(|| "64:ff9b::/96".parse().expect("valid range"));
    static SIX_TO_FOUR: LazyLock<IpNet> = LazyLock::new(|| "2002::/16".parse().expect("valid range"));
    let o = v6.octets();
    if NAT64.contains(&IpAddr::V6(v6)) {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if SIX_TO_FOUR.contains(&IpAddr::V6(v6)) {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

/// The address as the policy judges it: an IPv6 address carrying an IPv4 one is that address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The kind of `ip` (after `canonical`).
pub fn classify(ip: IpAddr) -> AddressKind {
    let ip = canonical(ip);
    RANGES.iter().find(|(net, _)| net.contains(&ip)).map(|(_, kind)| *kind).unwrap_or(AddressKind::Public)
}

/// Why a target was refused; its text is shown to the admin (and names the flag when the
/// configuration could allow it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What was refused: `127.0.0.1`, `localhost`, or `example.com (127.0.0.1)`.
    pub target: String,
    pub kind: AddressKind,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.describe();
        if self.kind.never_allowed() {
            write!(f, "{} is a {kind} address; Modelwatch never sends requests there", self.target)
        } else {
            write!(f, "{} is a {kind} address; internal addresses are refused unless allowed with {ALLOW_FLAG}", self.target)
        }
    }
}

impl std::error::Error for Refused {}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Allow {
    /// Public addresses only (the default).
    #[default]
    Nothing,
    /// Every address except link-local and metadata ones.
    All,
    /// Public addresses and these ranges (never link-local or metadata ones).
    Nets(Vec<IpNet>),
}

/// Which addresses admin-configured URLs may reach. The default allows public addresses only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allow: Allow,
}

impl TargetPolicy {
    /// Public addresses only.
    pub fn public_only() -> TargetPolicy {
        TargetPolicy::default()
    }

    /// Every address but link-local and cloud metadata ones.
    pub fn allow_all() -> TargetPolicy {
        TargetPolicy { allow: Allow::All }
    }

    /// Public addresses and the given ranges.
    pub fn allow_nets(nets: Vec<IpNet>) -> TargetPolicy {
        TargetPolicy { allow: Allow::Nets(nets) }
    }

    /// The policy of `--allow-private-targets`: empty, `none` or `false` for public addresses
    /// only; `all` or `true` for every address but link-local and metadata ones; otherwise a
    /// comma-separated list of CIDRs (a bare address is a /32 or /128). A range lying wholly in
    /// link-local space is refused: it would allow nothing, and saying so beats a silent no-op.
    pub fn parse(spec: &str) -> Result<TargetPolicy, String> {
        let spec = spec.trim();
        match spec.to_ascii_lowercase().as_str() {
            "" | "none" | "false" => return Ok(TargetPolicy::public_only()),
            "all" | "true" => return Ok(TargetPolicy::allow_all()),
            _ => {}
        }
        let mut nets = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("{item:?} is not a CIDR range (e.g. 10.0.0.0/8) or an address; use all, or a comma-separated list"))?,
            };
            let never = RANGES.iter().any(|(r, kind)| kind.never_allowed() && r.contains(&net));
            if never {
                return Err(format!("{item} is link-local or cloud metadata space, which Modelwatch never contacts (see docs/configuration.md)"));
            }
            nets.push(net);
        }
        if nets.is_empty() {
            return Ok(TargetPolicy::public_only());
        }
        Ok(TargetPolicy::allow_nets(nets))
    }

    fn allows(&self, ip: IpAddr) -> bool {
        match &self.allow {
            Allow::Nothing => false,
            Allow::All => true,
            Allow::Nets(nets) => nets.iter().any(|n| n.contains(&ip) || n.contains(&canonical(ip))),
        }
    }

    /// Whether a connection to `ip` is allowed; `name` is the host name it came from, if any
    /// (for the message).
    pub fn check_ip(&self, ip: IpAddr, name: Option<&str>) -> Result<(), Refused> {
        let kind = classify(ip);
        if kind == AddressKind::Public || (!kind.never_allowed() && self.allows(ip)) {
            return Ok(());
        }
        let target = match name {
            Some(n) => format!("{n} ({ip})"),
            None => ip.to_string(),
        };
        Err(Refused { target, kind })
    }

    /// Whether a URL's host may be contacted, as far as the URL alone tells: literal addresses
    /// (in any of the forms the `url` crate normalises), `localhost` and the metadata names.
    /// Other names pass here; the server checks what they resolve to when it connects.
    pub fn check_host(&self, host: &url::Host<&str>) -> Result<(), Refused> {
        match host {
            url::Host::Ipv4(v4) => self.check_ip(IpAddr::V4(*v4), None),
            url::Host::Ipv6(v6) => self.check_ip(IpAddr::V6(*v6), None),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                // RFC 6761: localhost and its subdomains are the loopback interface.
                if name == "localhost" || name.ends_with(".localhost") {
                    let allowed = self.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST), None).is_ok();
                    return if allowed { Ok(()) } else { Err(Refused { target: name, kind: AddressKind::Loopback }) };
                }
                if name == "metadata.google.internal" || name == "metadata.goog" || name == "instance-data.ec2.internal" {
                    return Err(Refused { target: name, kind: AddressKind::Metadata });
                }
                Ok(())
            }
        }
    }

    /// `check_host` of a URL's host (a URL without one passes: it cannot be fetched anyway).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        match url.host() {
            Some(host) => self.check_host(&host),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(url: &str) -> Result<(), Refused> {
        TargetPolicy::public_only().check_url(&url::Url::parse(url).unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_by_default() {
        let p = TargetPolicy::public_only();
        for (addr, kind) in [
            ("127.0.0.1", AddressKind::Loopback),
            ("127.8.9.10", AddressKind::Loopback),
            ("::1", AddressKind::Loopback),
            ("0.0.0.0", AddressKind::Unspecified),
            ("::", AddressKind::Unspecified),
            ("10.0.0.1", AddressKind::Private),
            ("172.16.0.1", AddressKind::Private),
            ("172.31.255.254", AddressKind::Private),
            ("192.168.1.1", AddressKind::Private),
            ("fc00::1", AddressKind::Private),
            ("fd12:3456::1", AddressKind::Private),
            ("100.64.0.1", AddressKind::Shared),
            ("100.127.255.254", AddressKind::Shared),
            ("224.0.0.1", AddressKind::Reserved),
            ("255.255.255.255", AddressKind::Reserved),
            ("169.254.1.1", AddressKind::LinkLocal),
            ("fe80::1", AddressKind::LinkLocal),
            ("169.254.169.254", AddressKind::Metadata),
            ("fd00:ec2::254", AddressKind::Metadata),
            ("100.100.100.200", AddressKind::Metadata),
            ("168.63.129.16", AddressKind::Metadata),
        ] {
            assert_eq!(classify(ip(addr)), kind, "{addr}");
            let refused = p.check_ip(ip(addr), None).unwrap_err();
            assert_eq!(refused.kind, kind, "{addr}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "169.255.0.1"] {
            assert_eq!(classify(ip(public)), AddressKind::Public, "{public}");
            assert!(p.check_ip(ip(public), None).is_ok(), "{public}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_count_as_that_address() {
        let p = TargetPolicy::public_only();
        for (addr, kind) in [
            ("::ffff:127.0.0.1", AddressKind::Loopback),
            ("::ffff:7f00:1", AddressKind::Loopback),
            ("::ffff:10.0.0.1", AddressKind::Private),
            ("::ffff:169.254.169.254", AddressKind::Metadata),
            ("64:ff9b::a9fe:a9fe", AddressKind::Metadata),
            ("2002:7f00:1::", AddressKind::Loopback),
            ("::ffff:0.0.0.0", AddressKind::Unspecified),
            ("::7f00:1", AddressKind::Reserved),
        ] {
            assert_eq!(classify(ip(addr)), kind, "{addr}");
            assert!(p.check_ip(ip(addr), None).is_err(), "{addr}");
        }
        assert!(p.check_ip(ip("::ffff:8.8.8.8"), None).is_ok());
        // Allowed loopback covers its mapped form too, and a CIDR list matches the IPv4 inside.
        assert!(TargetPolicy::allow_all().check_ip(ip("::ffff:127.0.0.1"), None).is_ok());
        let nets = TargetPolicy::parse("10.0.0.0/8").unwrap();
        assert!(nets.check_ip(ip("::ffff:10.1.2.3"), None).is_ok());
        assert!(nets.check_ip(ip("::ffff:127.0.0.1"), None).is_err());
    }

    #[test]
    fn numeric_host_forms_are_the_addresses_they_stand_for() {
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.0.1/",
            "http://0177.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://0/",
            "http://0.0.0.0:9090/metrics",
            "http://10.0.0.1/",
            "http://167772161/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0xa9fea9fe/",
            "http://[fd00:ec2::254]/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://metadata.google.internal/computeMetadata/v1/",
        ] {
            assert!(host_of(url).is_err(), "{url} must be refused");
        }
        for url in ["https://hooks.slack.com/services/x", "http://vllm:8000/metrics", "https://events.pagerduty.com/v2/enqueue", "http://8.8.8.8/"] {
            assert!(host_of(url).is_ok(), "{url} must pass");
        }
        let e = host_of("http://2130706433/").unwrap_err();
        assert_eq!((e.target.as_str(), e.kind), ("127.0.0.1", AddressKind::Loopback));
        assert!(e.to_string().contains("--allow-private-targets"), "{e}");
        let e = host_of("http://0xa9fea9fe/").unwrap_err();
        assert_eq!((e.target.as_str(), e.kind), ("169.254.169.254", AddressKind::Metadata));
        assert!(!e.to_string().contains("--allow-private-targets"), "no flag allows metadata: {e}");
    }

    #[test]
    fn configuration_allows_loopback_and_private_but_never_metadata() {
        let all = TargetPolicy::parse("all").unwrap();
        assert_eq!(all, TargetPolicy::parse("TRUE").unwrap());
        for addr in ["127.0.0.1", "::1", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.0.10", "fd12::1", "100.64.1.1"] {
            assert!(all.check_ip(ip(addr), None).is_ok(), "{addr}");
        }
        for addr in ["169.254.169.254", "169.254.10.10", "fe80::1", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254"] {
            assert!(all.check_ip(ip(addr), None).is_err(), "{addr} is never allowed");
        }
        assert!(all.check_url(&url::Url::parse("http://localhost:9/").unwrap()).is_ok());
        assert!(all.check_url(&url::Url::parse("http://metadata.google.internal/").unwrap()).is_err());

        let some = TargetPolicy::parse(" 127.0.0.0/8, 10.1.0.0/16 ,fd12::/16, 192.168.1.7").unwrap();
        for addr in ["127.0.0.1", "10.1.200.3", "fd12::5", "192.168.1.7"] {
            assert!(some.check_ip(ip(addr), None).is_ok(), "{addr}");
        }
        for addr in ["::1", "10.2.0.1", "192.168.1.8", "172.16.0.1", "169.254.169.254"] {
            assert!(some.check_ip(ip(addr), None).is_err(), "{addr}");
        }
        // A range that covers metadata space still does not allow it.
        let wide = TargetPolicy::parse("0.0.0.0/0,::/0").unwrap();
        assert!(wide.check_ip(ip("10.0.0.1"), None).is_ok());
        assert!(wide.check_ip(ip("169.254.169.254"), None).is_err());
        assert!(wide.check_ip(ip("fe80::1"), None).is_err());

        for off in ["", "none", "false"] {
            assert_eq!(TargetPolicy::parse(off).unwrap(), TargetPolicy::public_only());
        }
        for bad in ["yes", "10.0.0.0/33", "10.0.0.0/8,bogus", "169.254.169.254/32", "169.254.0.0/16", "fe80::/64"] {
            assert!(TargetPolicy::parse(bad).is_err(), "{bad}");
        }
        let named = TargetPolicy::public_only().check_ip(ip("127.0.0.1"), Some("evil.example")).unwrap_err();
        assert_eq!(named.target, "evil.example (127.0.0.1)");
    }
}
