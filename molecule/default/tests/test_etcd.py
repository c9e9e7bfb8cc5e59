"""etcd: one healthy member per etcd host, reached over TLS with the client
certificate the etcd role installs, peers talking HTTPS, and no client let in
without a certificate."""

from __future__ import annotations

import json
from typing import Any

from clustercheck import ETCD_PKI as PKI
from clustercheck import ETCDCTL, Inventory, run_ok

CLIENT_PORT = 2379
PEER_PORT = 2380
LOCAL = f"--endpoints=https://127.0.0.1:{CLIENT_PORT}"


def client_urls(inventory: Inventory) -> set[str]:
    return {f"https://{inventory.address(h)}:{CLIENT_PORT}" for h in inventory.groups["etcd"]}


def test_every_member_sees_the_whole_cluster_healthy_over_tls(inventory: Inventory) -> None:
    expected = client_urls(inventory)
    for name in inventory.groups["etcd"]:
        host = inventory.host(name)
        out = run_ok(host, f"{ETCDCTL} {LOCAL} endpoint health --cluster -w json", "etcd health")
        health: list[dict[str, Any]] = json.loads(out)
        assert {h["endpoint"] for h in health} == expected, f"{name}: {health}"
        sick = [h for h in health if not h.get("health")]
        assert not sick, f"{name} sees unhealthy members: {sick}"


def test_members_are_the_etcd_hosts_with_https_peer_and_client_urls(
    inventory: Inventory,
) -> None:
    host = inventory.host(inventory.groups["etcd"][0])
    out = run_ok(host, f"{ETCDCTL} {LOCAL} member list -w json", "etcd members")
    members: list[dict[str, Any]] = json.loads(out)["members"]
    names = {m.get("name") for m in members}
    assert names == {h.lower() for h in inventory.groups["etcd"]}, members
    peers = {u for m in members for u in m["peerURLs"]}
    assert peers == {
        f"https://{inventory.address(h)}:{PEER_PORT}" for h in inventory.groups["etcd"]
    }
    assert {u for m in members for u in m["clientURLs"]} == client_urls(inventory), members
    assert not [m for m in members if m.get("isLearner")], f"learners left: {members}"


def test_members_require_client_certificates(inventory: Inventory) -> None:
    for name in inventory.groups["etcd"]:
        host = inventory.host(name)
        env = run_ok(host, "cat /etc/etcd/etcd.env", "etcd settings")
        for setting in ("ETCD_CLIENT_CERT_AUTH=true", "ETCD_PEER_CLIENT_CERT_AUTH=true"):
            assert setting in env.splitlines(), f"{name}: /etc/etcd/etcd.env lacks {setting}"
        # The same request with only the CA and no client certificate: refused.
        endpoint = f"--endpoints=https://{inventory.address(name)}:{CLIENT_PORT}"
        run_ok(host, f"{ETCDCTL} {endpoint} endpoint health", "etcd health with a certificate")
        bare = host.run(
            f"/usr/local/bin/etcdctl --cacert={PKI}/ca.crt --dial-timeout=3s"
            f" --command-timeout=5s {endpoint} endpoint health"
        )
        assert bare.rc != 0, (
            f"{name}: etcd answered a client without a certificate: {bare.stdout}{bare.stderr}"
        )
