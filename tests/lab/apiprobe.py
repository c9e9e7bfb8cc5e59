#!/usr/bin/python3
"""Read the API through this node's endpoint every 0.5 s, as a client does, and
log each failure; a line `TOTAL <n> FAILED <f>` every 20 probes. Counting starts
with the first answer. A failure is an error, a status other than 200 or no
answer within TIMEOUT seconds; an answer slower than SLOW seconds is logged as
SLOW (on the shared lab the load average reaches 100 on 2 cores, and answers of
3 s and more come without any upgrade running). Run on each node as a transient
systemd unit by the upgrade scenario's prepare step and by its CA rotation
check (molecule/upgrade/tests/test_z_ca_rotation.py):

    apiprobe.py <apiserver URL> <client certificate> <its key> <log file>

The read lists Services in namespace default (kube-proxy's client certificate
may; a quorum read, so etcd answers too). The client certificate is read again
when its files change, as kubectl and the components do: a renewal or a CA
rotation replaces it (molecule/upgrade/tests/test_z_ca_rotation.py). It is
not /readyz: an apiserver that is shutting down fails its /readyz on purpose,
for load balancers, while it still serves requests; a client sees only whether
its requests are served."""

import ssl
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

TIMEOUT = 10
SLOW = 3
READ = "/api/v1/namespaces/default/services?fieldSelector=metadata.name%3Dkubernetes"

url, cert, key, log = sys.argv[1:5]
Path(log).parent.mkdir(parents=True, exist_ok=True)
total = failed = 0
# The TLS context, and the change times of the client certificate it holds.
contexts: dict[tuple[float, float], ssl.SSLContext] = {}


def context() -> ssl.SSLContext:
    """A TLS context with the client certificate as its files are now."""
    times = (Path(cert).stat().st_mtime, Path(key).stat().st_mtime)
    if times not in contexts:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(cert, key)
        contexts.clear()
        contexts[times] = ctx
    return contexts[times]


def probe() -> float:
    """Seconds the read took to answer 200; raises on anything else."""
    start = time.monotonic()
    with urllib.request.urlopen(url + READ, context=context(), timeout=TIMEOUT) as answer:
        if answer.status != 200:
            raise OSError(f"status {answer.status}")
    return time.monotonic() - start


with Path(log).open("a", buffering=1) as out:
    while True:
        try:
            probe()
            break
        except Exception:  # not counted: the probe is starting
            time.sleep(0.5)
    out.write(f"{datetime.now(UTC).isoformat()} START the apiserver answers, counting\n")
    while True:
        total += 1
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            took = probe()
            if took > SLOW:
                out.write(f"{now} SLOW {took:.1f}s\n")
        except urllib.error.HTTPError as exc:  # what the apiserver said
            failed += 1
            body = " ".join(exc.read().decode(errors="replace").split())[:300]
            out.write(f"{now} FAIL {exc} {body}\n")
        except Exception as exc:  # every failure counts, whatever its kind
            failed += 1
            out.write(f"{now} FAIL {exc}\n")
        if total % 20 == 0:
            out.write(f"{now} TOTAL {total} FAILED {failed}\n")
        time.sleep(0.5)
