"""tests/lab/hoststate.py: what the reset scenario compares between a reset
host and a never-deployed one, and what it ignores."""

from __future__ import annotations

import hoststate

NFT = """\
table ip nat { # handle 1
\tchain DOCKER_OUTPUT { # handle 1
\t\tip daddr 127.0.0.11 tcp dport 53 counter packets 0 bytes 0 dnat to 127.0.0.11:41523 # handle 7
\t\tip saddr 127.0.0.11 tcp sport 41523 counter packets 3 bytes 180 snat to :53 # handle 8
\t}
}
table ip filter { # handle 2
\tchain INPUT { # handle 1
\t\ttype filter hook input priority filter; policy accept;
\t}
}
table ip mangle { # handle 3
\tchain INPUT { # handle 1
\t\ttype filter hook input priority mangle; policy drop;
\t}
}
"""


def test_nft_counters_handles_and_docker_dns_ports_do_not_count() -> None:
    a = hoststate.nft_ruleset(NFT)
    b = hoststate.nft_ruleset(
        NFT.replace("41523", "37001").replace("packets 3 bytes 180", "packets 9 bytes 540")
    )
    assert a == b
    assert "ip daddr 127.0.0.11 tcp dport 53 counter dnat to 127.0.0.11:N" in {
        x.split(" | ")[-1] for x in a
    }


def test_an_empty_accepting_chain_or_table_is_none() -> None:
    with_prerouting = NFT.replace(
        "table ip nat { # handle 1\n",
        "table ip nat { # handle 1\n\tchain PREROUTING { # handle 2\n"
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t}\n",
    )
    assert hoststate.nft_ruleset(with_prerouting) == hoststate.nft_ruleset(NFT)
    tables = {x.split(" | ")[0] for x in hoststate.nft_ruleset(NFT)}
    # filter: no rule, accepts everything; mangle: a drop policy, which matters.
    assert tables == {"table ip nat", "table ip mangle"}


def test_mounts_name_the_container_id_alike() -> None:
    a = "/sys/fs/cgroup/cpu/docker/" + "b" * 64 + " cgroup\n/var/lib/etcd ext4\n"
    b = a.replace("b" * 64, "c" * 64)
    assert (
        hoststate.mounts(a)
        == hoststate.mounts(b)
        == {
            "/sys/fs/cgroup/cpu/docker/<id> cgroup",
            "/var/lib/etcd ext4",
        }
    )


def test_a_rule_left_behind_shows() -> None:
    left = NFT.replace(
        "\t\ttype filter hook input priority filter; policy accept;\n",
        "\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\tcounter packets 1 bytes 2 jump KUBE-FIREWALL # handle 9\n",
    )
    diff = hoststate.difference(hoststate.nft_ruleset(left), hoststate.nft_ruleset(NFT))
    assert diff is not None and "KUBE-FIREWALL" in diff


def test_iptables_save_counters_do_not_count() -> None:
    a = "*nat\n:POSTROUTING ACCEPT [5:300]\n-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT\n"
    b = a.replace("[5:300]", "[0:0]")
    assert hoststate.iptables_save(a) == hoststate.iptables_save(b)
    assert "nat -A POSTROUTING -j KUBE-POSTROUTING" in hoststate.iptables_save(a)


def test_ports_name_the_host_address_and_skip_docker_dns() -> None:
    text = (
        "tcp LISTEN 0 4096 10.213.0.21:2379 0.0.0.0:*\n"
        "tcp LISTEN 0 4096 127.0.0.11:39321 0.0.0.0:*\n"
        "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n"
    )
    assert hoststate.ports(text, "10.213.0.21") == {"tcp <ip>:2379", "tcp 0.0.0.0:22"}


def test_files_ignore_only_what_differs_between_any_two_hosts() -> None:
    listing = (
        "f /etc/ssh/ssh_host_ed25519_key\nf /etc/machine-id\nd /var/lib/apt\n"
        "f /var/lib/apt/lists/x\nf /run/systemd/units/invocation:ssh.service\n"
        "d /etc/kubernetes\nf /usr/local/bin/kubelet\nd /var/lib/etcd\n"
    )
    assert hoststate.files(listing) == {
        "d /etc/kubernetes",
        "f /usr/local/bin/kubelet",
        "d /var/lib/etcd",
    }


def test_interfaces_without_peers() -> None:
    text = (
        "1: lo: <LOOPBACK,UP> mtu 65536\n"
        "2: eth0@if12: <BROADCAST,UP> mtu 1500\n"
        "5: flannel.1: <BROADCAST> mtu 1450\n"
    )
    assert hoststate.interfaces(text) == {"lo", "eth0", "flannel.1"}


def test_routes_name_the_host_address_and_show_a_leftover_blackhole() -> None:
    fresh = (
        "default via 10.213.0.1 dev eth0 \n"
        "10.213.0.0/24 dev eth0 proto kernel scope link src 10.213.0.22 \n"
        "local 10.213.0.22 dev eth0 table local proto kernel scope host src 10.213.0.22 \n"
        "broadcast 10.213.0.255 dev eth0 table local proto kernel scope link src 10.213.0.22 \n"
    )
    reset = fresh.replace("10.213.0.22", "10.213.0.14") + "blackhole 10.233.74.64/26 proto 80 \n"
    reference = hoststate.routes(fresh, "10.213.0.22")
    assert reference == {
        "default via 10.213.0.1 dev eth0",
        "10.213.0.0/24 dev eth0 proto kernel scope link src <ip>",
    }
    assert hoststate.difference(hoststate.routes(reset, "10.213.0.14"), reference) == (
        "left behind:\n  blackhole 10.233.74.64/26 proto 80"
    )
