//! Which IP addresses are on the public internet: the server fetches URLs that callers and
//! plugins name (input images, provider results) and must never be steered into its own
//! network (SSRF).
//!
//! The rules are one table, [`SPECIAL`], transcribed from IANA's special-purpose address
//! registries — <https://www.iana.org/assignments/iana-ipv4-special-registry/> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/> (both as updated in 2025,
//! with RFC 9602's SRv6 SIDs, RFC 9637's 3fff::/20 and RFC 9780's dummy prefix) — plus the
//! multicast ranges, which are not unicast destinations at all. The most specific row that
//! holds an address decides, so the registry's globally reachable exceptions inside blocks
//! that are not (`192.0.0.9`, `2001:1::1`, AS112, AMT, ORCHIDv2…) come out right. Prefixes
//! that carry an IPv4 address (IPv4-mapped, -translated and -compatible IPv6, NAT64's
//! `64:ff9b::/96`, 6to4) are judged by the address they carry, so `::ffff:0:7f00:1` or
//! `64:ff9b::a9fe:a9fe` reach no further than `127.0.0.1` or `169.254.169.254` would.
//! `std`'s `is_global` is still unstable and the crates that back-port it judge no embedded
//! IPv4 address, hence this table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

/// What a special-purpose block means for outbound requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Not globally reachable: never fetched.
    Local,
    /// Globally reachable (an exception inside a block that is not).
    Global,
    /// Carries an IPv4 address in these bits (from the most significant bit of the IPv6
    /// address): judged by that address.
    EmbeddedV4 {
        /// Bit offset of the IPv4 address.
        bit: u32,
    },
}

/// One row of the table: a block, its registry name and source, and its verdict.
#[derive(Clone, Copy, Debug)]
pub struct Special {
    /// The block, as CIDR.
    pub cidr: &'static str,
    /// The registry's name for it.
    pub name: &'static str,
    /// The RFC that reserves it.
    pub rfc: &'static str,
    /// What it means for a fetch.
    pub reach: Reach,
}

const fn row(cidr: &'static str, name: &'static str, rfc: &'static str, reach: Reach) -> Special {
    Special { cidr, name, rfc, reach }
}

use Reach::{EmbeddedV4, Global, Local};

/// The IANA IPv4 and IPv6 special-purpose address registries (and multicast).
pub const SPECIAL: &[Special] = &[
    // IPv4
    row("0.0.0.0/8", "This network", "RFC 791", Local),
    row("10.0.0.0/8", "Private-Use", "RFC 1918", Local),
    row("100.64.0.0/10", "Shared Address Space", "RFC 6598", Local),
    row("127.0.0.0/8", "Loopback", "RFC 1122", Local),
    row("169.254.0.0/16", "Link Local", "RFC 3927", Local),
    row("172.16.0.0/12", "Private-Use", "RFC 1918", Local),
    row("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", Local),
    row("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", Local),
    row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", Local),
    row("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", Global),
    row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", Global),
    row("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880", Local),
    row("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880", Local),
    row("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", Local),
    row("192.31.196.0/24", "AS112-v4", "RFC 7535", Global),
    row("192.52.193.0/24", "AMT", "RFC 7450", Global),
    row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", Local),
    row("192.168.0.0/16", "Private-Use", "RFC 1918", Local),
    row("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", Global),
    row("198.18.0.0/15", "Benchmarking", "RFC 2544", Local),
    row("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", Local),
    row("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", Local),
    row("224.0.0.0/4", "Multicast", "RFC 5771", Local),
    row("240.0.0.0/4", "Reserved", "RFC 1112", Local),
    row("255.255.255.255/32", "Limited Broadcast", "RFC 8190", Local),
    // IPv6
    row("::/128", "Unspecified Address", "RFC 4291", Local),
    row("::1/128", "Loopback Address", "RFC 4291", Local),
    row("::/96", "IPv4-Compatible IPv6 Address (deprecated)", "RFC 4291", EmbeddedV4 { bit: 96 }),
    row("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", EmbeddedV4 { bit: 96 }),
    row("::ffff:0:0:0/96", "IPv4-translated Address", "RFC 2765", EmbeddedV4 { bit: 96 }),
    row("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", EmbeddedV4 { bit: 96 }),
    row("64:ff9b:1::/48", "IPv4-IPv6 Translat. (local use)", "RFC 8215", Local),
    row("100::/64", "Discard-Only Address Block", "RFC 6666", Local),
    row("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", Local),
    row("2001::/23", "IETF Protocol Assignments", "RFC 2928", Local),
    row("2001::/32", "TEREDO", "RFC 4380", Local),
    row("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", Global),
    row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", Global),
    row("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", Global),
    row("2001:2::/48", "Benchmarking", "RFC 5180", Local),
    row("2001:3::/32", "AMT", "RFC 7450", Global),
    row("2001:4:112::/48", "AS112-v6", "RFC 7535", Global),
    row("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", Local),
    row("2001:20::/28", "ORCHIDv2", "RFC 7343", Global),
    row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", Global),
    row("2001:db8::/32", "Documentation", "RFC 3849", Local),
    row("2002::/16", "6to4", "RFC 3056", EmbeddedV4 { bit: 16 }),
    row("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", Global),
    row("3fff::/20", "Documentation", "RFC 9637", Local),
    row("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", Local),
    row("fc00::/7", "Unique-Local", "RFC 4193", Local),
    row("fe80::/10", "Link-Local Unicast", "RFC 4291", Local),
    row("fec0::/10", "Site-Local Unicast (deprecated)", "RFC 3879", Local),
    row("ff00::/8", "Multicast", "RFC 4291", Local),
];

/// A parsed row: the network as a 128-bit number (IPv4 in the low 32 bits), its prefix
/// length in that family, and the verdict.
struct Parsed {
    v4: bool,
    net: u128,
    len: u32,
    reach: Reach,
}

static TABLE: LazyLock<Vec<Parsed>> = LazyLock::new(|| {
    SPECIAL
        .iter()
        .map(|s| {
            let (addr, len) = s.cidr.split_once('/').expect("the table's rows are CIDRs");
            let len: u32 = len.parse().expect("the table's prefix lengths are numbers");
            let (v4, net, _) = bits(addr.parse().expect("the table's addresses parse"));
            Parsed { v4, net, len, reach: s.reach }
        })
        .collect()
});

/// `ip` as (is IPv4, its bits as a number, its width in bits).
fn bits(ip: IpAddr) -> (bool, u128, u32) {
    match ip {
        IpAddr::V4(a) => (true, u32::from(a) as u128, 32),
        IpAddr::V6(a) => (false, u128::from(a), 128),
    }
}

fn in_block(value: u128, width: u32, net: u128, len: u32) -> bool {
    let shift = width - len;
    if shift >= 128 {
        return true;
    }
    (value >> shift) == (net >> shift)
}

/// The most specific row holding `ip`, if any.
fn lookup(ip: IpAddr) -> Option<&'static Parsed> {
    let (v4, value, width) = bits(ip);
    TABLE.iter().filter(|p| p.v4 == v4 && in_block(value, width, p.net, p.len)).max_by_key(|p| p.len)
}

/// Is `ip` globally reachable, i.e. one the server may fetch from on a caller's behalf?
/// False for every block of the registries that is not globally reachable, for multicast,
/// and for IPv6 addresses that carry such an IPv4 address.
pub fn is_global(ip: IpAddr) -> bool {
    match lookup(ip).map(|p| p.reach) {
        None | Some(Global) => true,
        Some(Local) => false,
        Some(EmbeddedV4 { bit }) => {
            let IpAddr::V6(v6) = ip else { return false };
            let carried = (u128::from(v6) >> (128 - 32 - bit)) as u32;
            is_global(IpAddr::V4(Ipv4Addr::from(carried)))
        }
    }
}

/// The IPv6 address with `v4` at bit offset `bit` of `prefix` (for tests and docs).
pub fn embed_v4(prefix: Ipv6Addr, bit: u32, v4: Ipv4Addr) -> Ipv6Addr {
    let shift = 128 - 32 - bit;
    let mask = !((u32::MAX as u128) << shift);
    Ipv6Addr::from((u128::from(prefix) & mask) | ((u32::from(v4) as u128) << shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address in the middle of `cidr` (itself for a /32 or /128), clear of the more
    /// specific rows the table has at the start of some blocks.
    fn sample(cidr: &str) -> IpAddr {
        let (addr, len) = cidr.split_once('/').unwrap();
        let len: u32 = len.parse().unwrap();
        match addr.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) if len < 32 => IpAddr::V4(Ipv4Addr::from(u32::from(a) + (1 << (32 - len - 1)))),
            IpAddr::V6(a) if len < 128 => IpAddr::V6(Ipv6Addr::from(u128::from(a) + (1 << (128 - len - 1)))),
            other => other,
        }
    }

    #[test]
    fn every_row_decides_for_the_addresses_it_holds() {
        for row in SPECIAL {
            let ip = sample(row.cidr);
            let hit = lookup(ip).unwrap_or_else(|| panic!("{} holds {ip}", row.cidr));
            assert_eq!(hit.reach, row.reach, "{} ({}, {}) for {ip}", row.cidr, row.name, row.rfc);
            match row.reach {
                Local => assert!(!is_global(ip), "{ip} in {} ({})", row.cidr, row.name),
                Global => assert!(is_global(ip), "{ip} in {} ({})", row.cidr, row.name),
                EmbeddedV4 { bit } => {
                    let IpAddr::V6(prefix) = row.cidr.split('/').next().unwrap().parse().unwrap() else {
                        panic!("{}: an IPv4 row cannot embed", row.cidr)
                    };
                    for (v4, global) in
                        [("127.0.0.1", false), ("169.254.169.254", false), ("10.1.2.3", false), ("8.8.8.8", true)]
                    {
                        let ip = IpAddr::V6(embed_v4(prefix, bit, v4.parse().unwrap()));
                        assert_eq!(is_global(ip), global, "{ip} ({} carrying {v4})", row.name);
                    }
                }
            }
        }
    }

    #[test]
    fn addresses_the_reliability_sweep_found() {
        for ip in [
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:7f00:1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:c0a8:101::1",
            "3fff::1",
            "5f00::1",
            "100:0:0:1::1",
            "198.19.255.255",
            "192.0.0.8",
            "ff02::1",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "fec0::1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "192.0.0.9",
            "2001:4:112::1",
        ] {
            assert!(is_global(ip.parse().unwrap()), "{ip}");
        }
    }
}
