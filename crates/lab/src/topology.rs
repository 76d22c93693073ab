//! Links, addresses and routes of the lab, through netlink.
//!
//! A router namespace links every node: node `i` has uplink `172.18.i.2/24` (its node IP) to the
//! router's `172.18.i.1`, and pod CIDR `10.244.i.0/24` on its bridge, whose address `10.244.i.1`
//! is the pods' gateway. The router routes each pod CIDR to its node, so cross-node traffic
//! really crosses two links that a fault can cut. Same-node traffic is bridged, and
//! `bridge-nf-call-iptables` sends it through the node's netfilter hooks like routed traffic.
//! Nothing is connected to the host: the lab's addresses cannot clash with the host's routes.
//!
//! Pods and bridges never ARP for each other: the host's neighbour table, shared by every
//! namespace, holds only `gc_thresh3` (1024 by default) dynamic entries, fewer than a node's
//! pods need for each other, and further lookups fail ("neighbor table overflow"). Each pod
//! `eth0` and bridge has a MAC derived from its address ([`mac`]) and every pair on a node has
//! permanent entries, which are not counted. So do the uplinks' two ends, whose MACs also
//! derive from their addresses.
//!
//! IPv6 (`--ip-family ipv6|dual`) mirrors IPv4 address for address: each address has a twin
//! ([`twin`]) in `fd00::/8`, `10.244.1.10` is `fd00:10:244:1::10`, on a /64 where IPv4 has a
//! /24, with the same routes and permanent neighbour entries (for the same MACs), so no
//! neighbour discovery is needed (a first packet resolving an uplink neighbour was seen to fail
//! where ARP does not). Addresses skip duplicate address detection (usable at once; the lab
//! alone assigns them), and pods send no router solicitations, each of which would leave a
//! dynamic entry on the node.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use netmatrix_model::{IpFamilies, IpFamily};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::{names, netns};

pub const MAX_NODES: usize = 250;
/// Host numbers 10..=254 of a node's /24.
pub const MAX_PODS_PER_NODE: usize = 245;

pub fn node_ip(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 18, node as u8, 2)
}

fn router_ip(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 18, node as u8, 1)
}

pub fn pod_cidr(node: usize) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 244, node as u8, 0), 24).expect("valid prefix")
}

fn gateway(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, node as u8, 1)
}

/// The `slot`-th pod address of a node.
pub fn pod_ip(node: usize, slot: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, node as u8, 10 + slot as u8)
}

/// The IPv6 twin of a lab IPv4 address: `fd00:` and the four numbers, each written in decimal
/// but read as hex, so that it reads like its twin (`172.18.1.2` is `fd00:172:18:1::2`).
pub fn twin(ip: Ipv4Addr) -> Ipv6Addr {
    let [a, b, c, d] = ip.octets().map(|n| u16::from_str_radix(&n.to_string(), 16).expect("decimal digits are hex digits"));
    Ipv6Addr::new(0xfd00, a, b, c, 0, 0, 0, d)
}

/// The addresses of `families` for the lab address `ip` (its own and its twin), the primary
/// family first.
pub fn addresses(families: IpFamilies, ip: Ipv4Addr) -> Vec<IpAddr> {
    families.list().iter().map(|&f| of_family(f, ip)).collect()
}

/// The MAC of the pod `eth0` or bridge with address `ip`: `0a:58` and the address, as OVN does.
pub fn mac(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x0a, 0x58, a, b, c, d]
}

/// The address of `family` for the lab address `ip`: itself, or its twin.
pub fn of_family(family: IpFamily, ip: Ipv4Addr) -> IpAddr {
    if family == IpFamily::IPv4 { IpAddr::V4(ip) } else { IpAddr::V6(twin(ip)) }
}

/// Service ClusterIPs the lab allocates: 10.96.0.10 upwards, and their twins for IPv6
/// (`fd00:10:96::10` upwards, in `fd00:10:96::/48` as IPv4's are in 10.96.0.0/12).
pub fn cluster_ip(slot: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 10)) + slot as u32)
}

/// LoadBalancer IPs the lab assigns: 172.18.255.1 upwards (IPv6: their twins,
/// `fd00:172:18:255::1` upwards).
pub fn load_balancer_ip(slot: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 18, 255, 1 + slot as u8)
}

pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

async fn index(handle: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await? {
        Some(link) => Ok(link.header.index),
        None => Err(rtnetlink::Error::RequestFailed),
    }
}

async fn up(handle: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
    let i = index(handle, name).await?;
    handle.link().set(LinkUnspec::new_with_index(i).up().build()).execute().await?;
    Ok(i)
}

/// Adds the addresses of `families` for the lab address `ip` to `link`, IPv6 on a /64.
async fn address(handle: &Handle, link: u32, families: IpFamilies, ip: Ipv4Addr, v4_prefix: u8) -> Result<(), rtnetlink::Error> {
    for a in addresses(families, ip) {
        let mut request = handle.address().add(link, a, if a.is_ipv4() { v4_prefix } else { 64 });
        if a.is_ipv6() {
            request.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request.execute().await?;
    }
    Ok(())
}

/// Routes the networks of `families` for the lab network `destination` via the twins of `via`.
async fn route(handle: &Handle, families: IpFamilies, destination: Ipv4Net, via: Ipv4Addr) -> Result<(), rtnetlink::Error> {
    for family in families.list() {
        let message = match family {
            IpFamily::IPv4 => RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(destination.network(), destination.prefix_len()).gateway(via).build(),
            // The /24 of IPv4 is a /64 (a whole /0 stays a /0).
            IpFamily::IPv6 => {
                let length = if destination.prefix_len() == 0 { 0 } else { 64 };
                let network = if length == 0 { Ipv6Addr::UNSPECIFIED } else { twin(destination.network()) };
                RouteMessageBuilder::<Ipv6Addr>::new().destination_prefix(network, length).gateway(twin(via)).build()
            }
        };
        handle.route().add(message).execute().await?;
    }
    Ok(())
}

/// Installs the permanent entries for the addresses of `families` of `ip` (all at [`mac`] of
/// `ip`) on `link`, replacing any other.
async fn neighbour(handle: &Handle, link: u32, families: IpFamilies, ip: Ipv4Addr) -> Result<(), rtnetlink::Error> {
    for a in addresses(families, ip) {
        handle.neighbours().add(link, a).link_layer_address(&mac(ip)).replace().execute().await?;
    }
    Ok(())
}

async fn remove_neighbour(handle: &Handle, link: u32, families: IpFamilies, ip: Ipv4Addr) -> Result<(), rtnetlink::Error> {
    for a in addresses(families, ip) {
        let mut message = NeighbourMessage::default();
        message.header.ifindex = link;
        let destination = match a {
            IpAddr::V4(v4) => {
                message.header.family = AddressFamily::Inet;
                NeighbourAddress::Inet(v4)
            }
            IpAddr::V6(v6) => {
                message.header.family = AddressFamily::Inet6;
                NeighbourAddress::Inet6(v6)
            }
        };
        message.attributes.push(NeighbourAttribute::Destination(destination));
        handle.neighbours().del(message).execute().await?;
    }
    Ok(())
}

/// Adds (`present`) or removes the entries for `ips` (and their twins) on link `dev` of
/// namespace `ns`, all in one entry into the namespace.
fn set_neighbours(ns: &str, dev: &str, families: IpFamilies, ips: &[Ipv4Addr], present: bool) -> io::Result<()> {
    netns::netlink(ns, async |h| {
        let link = index(&h, dev).await?;
        for &ip in ips {
            if present { neighbour(&h, link, families, ip).await? } else { remove_neighbour(&h, link, families, ip).await? }
        }
        Ok(())
    })
}

/// Turns on forwarding of `families` in namespace `ns`.
fn forward(ns: &str, families: IpFamilies) -> io::Result<()> {
    for family in families.list() {
        match family {
            IpFamily::IPv4 => netns::sysctl(ns, "net.ipv4.ip_forward", "1")?,
            IpFamily::IPv6 => netns::sysctl(ns, "net.ipv6.conf.all.forwarding", "1")?,
        }
    }
    Ok(())
}

/// Creates a veth pair in namespace `ns` and moves `peer` into namespace `peer_ns`; `macs`
/// gives both ends' addresses.
fn veth(ns: &str, name: &str, peer: &str, peer_ns: &str, macs: Option<[[u8; 6]; 2]>) -> io::Result<()> {
    let target = std::fs::File::open(netns::path(peer_ns))?;
    let fd = target.as_raw_fd();
    netns::netlink(ns, async |h| {
        h.link().add(LinkVeth::new(name, peer).build()).execute().await?;
        let p = index(&h, peer).await?;
        if let Some([mine, theirs]) = macs {
            let i = index(&h, name).await?;
            h.link().set(LinkUnspec::new_with_index(i).address(mine.to_vec()).build()).execute().await?;
            h.link().set(LinkUnspec::new_with_index(p).address(theirs.to_vec()).build()).execute().await?;
        }
        h.link().set(LinkUnspec::new_with_index(p).setns_by_fd(fd).build()).execute().await
    })
}

pub fn create_router(lab: &str, families: IpFamilies) -> io::Result<()> {
    let router = names::router(lab);
    netns::create(&router)?;
    netns::netlink(&router, async |h| up(&h, "lo").await.map(drop))?;
    forward(&router, families)
}

/// A node: its namespace, uplink to the router, bridge and routes.
pub fn create_node(lab: &str, node: usize, families: IpFamilies) -> io::Result<()> {
    let (router, ns) = (names::router(lab), names::node(lab, node));
    netns::create(&ns)?;
    let (router_end, node_end) = (names::router_link(lab, node), names::uplink(lab, node));
    veth(&router, &router_end, &node_end, &ns, Some([mac(router_ip(node)), mac(node_ip(node))]))?;
    netns::netlink(&router, async |h| {
        let link = up(&h, &router_end).await?;
        address(&h, link, families, router_ip(node), 24).await?;
        neighbour(&h, link, families, node_ip(node)).await?;
        route(&h, families, pod_cidr(node), node_ip(node)).await
    })?;
    let bridge = names::bridge(lab);
    netns::netlink(&ns, async |h| {
        up(&h, "lo").await?;
        let link = up(&h, &node_end).await?;
        address(&h, link, families, node_ip(node), 24).await?;
        neighbour(&h, link, families, router_ip(node)).await?;
        // A bridge's MAC otherwise follows its ports, and the pods' entries for it would go stale.
        h.link().add(LinkBridge::new(&bridge).address(mac(gateway(node)).to_vec()).build()).execute().await?;
        let br = up(&h, &bridge).await?;
        address(&h, br, families, gateway(node), 24).await?;
        route(&h, families, "0.0.0.0/0".parse().expect("valid"), router_ip(node)).await
    })?;
    forward(&ns, families)?;
    // A denied connection is rejected with an ICMP error; a rate-limited one (per destination,
    // and 1,000/s with bursts of 50 for the namespace, by default) would leave a probe to time
    // out instead. No error type is rate-limited here: the masks say which are.
    netns::sysctl(&ns, "net.ipv4.icmp_ratemask", "0")?;
    netns::sysctl(&ns, "net.ipv6.icmp.ratemask", "\n")?; // an empty write would change nothing
    netns::sysctl(&ns, "net.bridge.bridge-nf-call-iptables", "1")?;
    netns::sysctl(&ns, "net.bridge.bridge-nf-call-ip6tables", "1")
}

/// Hairpin mode of the bridge ports of pods `ids` on `node`.
pub fn set_hairpin(lab: &str, node: usize, ids: &[u32], on: bool) -> io::Result<()> {
    netns::netlink(&names::node(lab, node), async |h| {
        for &id in ids {
            let link = index(&h, &names::pod_link(lab, id)).await?;
            h.link().set_port(LinkBridgePort::new(link).hairpin(on).build()).execute().await?;
        }
        Ok(())
    })
}

/// A pod: its namespace with `eth0` on the node's bridge, its addresses and default routes,
/// and permanent neighbour entries between the pod and its node (those for the node's other
/// pods are [`set_peers`]'s). `ip` names the pod (its MAC, its IPv6 twin) also where it has
/// no IPv4 address.
pub fn create_pod(lab: &str, node: usize, id: u32, families: IpFamilies, ip: Ipv4Addr) -> io::Result<()> {
    let (node_ns, ns) = (names::node(lab, node), names::pod(lab, id));
    netns::create(&ns)?;
    if families.has(IpFamily::IPv6) {
        // Before `eth0` arrives, which takes the namespace's defaults.
        netns::sysctl(&ns, "net.ipv6.conf.default.router_solicitations", "0")?;
    }
    let (node_end, pod_end) = (names::pod_link(lab, id), names::pod_link_peer(lab, id));
    veth(&node_ns, &node_end, &pod_end, &ns, None)?;
    let bridge = names::bridge(lab);
    netns::netlink(&node_ns, async |h| {
        let br = index(&h, &bridge).await?;
        let link = index(&h, &node_end).await?;
        h.link().set(LinkUnspec::new_with_index(link).controller(br).up().build()).execute().await?;
        // Hairpin: a pod reaching itself through a Service is sent back out of its own port.
        h.link().set_port(LinkBridgePort::new(link).hairpin(true).build()).execute().await?;
        neighbour(&h, br, families, ip).await
    })?;
    netns::netlink(&ns, async |h| {
        up(&h, "lo").await?;
        let link = index(&h, &pod_end).await?;
        h.link().set(LinkUnspec::new_with_index(link).name("eth0").address(mac(ip).to_vec()).up().build()).execute().await?;
        address(&h, link, families, ip, 24).await?;
        neighbour(&h, link, families, gateway(node)).await?;
        route(&h, families, "0.0.0.0/0".parse().expect("valid"), gateway(node)).await
    })
}

/// Adds (`present`) or removes pod `id`'s entries for the other pods of its node at `peers`.
pub fn set_peers(lab: &str, id: u32, families: IpFamilies, peers: &[Ipv4Addr], present: bool) -> io::Result<()> {
    set_neighbours(&names::pod(lab, id), "eth0", families, peers, present)
}

/// Removes the node's entry for a deleted pod: it is on the bridge, which outlives the pod's veth.
pub fn forget_pod(lab: &str, node: usize, families: IpFamilies, ip: Ipv4Addr) -> io::Result<()> {
    set_neighbours(&names::node(lab, node), &names::bridge(lab), families, &[ip], false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_twins_read_like_their_ipv4_addresses() {
        assert_eq!(twin(pod_ip(1, 0)).to_string(), "fd00:10:244:1::10");
        assert_eq!(twin(node_ip(249)).to_string(), "fd00:172:18:249::2");
        assert_eq!(twin(pod_ip(0, MAX_PODS_PER_NODE - 1)).to_string(), "fd00:10:244::254");
        // Distinct IPv4 addresses have distinct twins, inside each node's /64.
        let twins: std::collections::BTreeSet<Ipv6Addr> = (0..MAX_PODS_PER_NODE).map(|s| twin(pod_ip(7, s))).collect();
        assert_eq!(twins.len(), MAX_PODS_PER_NODE);
        assert!(twins.iter().all(|t| t.segments()[..4] == twin(gateway(7)).segments()[..4]));
    }

    #[test]
    fn addresses_list_the_primary_family_first() {
        let ip = pod_ip(2, 3);
        let v6: IpAddr = "fd00:10:244:2::13".parse().unwrap();
        assert_eq!(addresses(IpFamilies::Dual, ip), [IpAddr::V4(ip), v6]);
        assert_eq!(addresses(IpFamilies::Ipv6, ip), [v6]);
        assert_eq!(addresses(IpFamilies::Ipv4, ip), [IpAddr::V4(ip)]);
    }
}
