# kubeforge: `make demo` brings up the local lab and deploys onto it,
# `make test` runs every check. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE ?= $(or $(KUBEFORGE_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kubeforge)
export KUBEFORGE_CACHE := $(CACHE)
VENV := $(CACHE)/venv-$(shell sha256sum requirements.txt | cut -c1-12)
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
NODES ?= 5
LAB := $(VENV)/bin/python tests/lab/lab.py
PYTEST := $(VENV)/bin/pytest

.PHONY: help setup lint unit lab-build lab-up lab-down lab-test preflight-test conformance-build molecule-default molecule-calico-etcd molecule-day2 molecule-all bench bench-growth conformance conformance-cluster conformance-quick demo test test-full

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## install the pinned Python tools (virtualenv outside the repo)

$(VENV)/.installed: requirements.txt
	@python3 -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	python3 -m venv $(VENV)
	PIP_CACHE_DIR=$(CACHE)/pip $(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

lint: setup  ## yamllint, ansible-lint (production profile), ruff, mypy
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .
	mypy

unit: setup  ## fast unit tests
	$(PYTEST) tests/unit

.PHONY: docs
docs: setup  ## regenerate the generated parts of docs/ (docs/kubespray.md's table, docs/variables.md's reference, docs/security.md's CIS table)
	$(VENV)/bin/python tests/tools/render_kubespray_doc.py
	$(VENV)/bin/python tests/tools/render_variables_doc.py
	$(VENV)/bin/python tests/tools/render_security_doc.py

# LAB_BUILD_ARGS=--conformance: the conformance suite and its images too.
LAB_BUILD_ARGS ?=
lab-build: setup  ## build the lab's binaries, mirror and images (cached)
	$(LAB) build $(LAB_BUILD_ARGS)

# LAB_ARGS: variables for the generated inventory, e.g.
# LAB_ARGS="--var kube_network_plugin=calico".
LAB_ARGS ?=

lab-up: setup  ## bring up the local lab (NODES=5 by default, 1-12; LAB_ARGS="--var NAME=VALUE")
	$(LAB) up --nodes $(NODES) $(LAB_ARGS)

lab-down: setup  ## remove the lab's containers, volumes and network
	$(LAB) down

# Uses lab hosts node6 and node7 only; brings the lab up to 7 nodes when it has
# fewer (never shrinks a bigger lab), building only what the nodes need: the
# opening play installs nothing.
preflight-test: setup  ## the opening play (preflight) against lab hosts node6 and node7
	@n=$$(sed -n 's/^LAB_NODES=//p' inventory/lab/lab.env 2>/dev/null); \
	if [ "$${n:-0}" -lt 7 ]; then echo "$(LAB) up --nodes 7 --nodes-only"; $(LAB) up --nodes 7 --nodes-only; fi
	$(PYTEST) tests/integration/test_preflight.py

# Replaces the lab's nodes with 5 fresh ones, deploys and verifies a cluster, and
# takes the whole lab down at the end (docs/testing.md).
molecule-default: setup  ## molecule: fresh 5-node lab, cluster.yml (calico), checks (the first a changed=0 second run), lab down
	molecule test -s default

# The same scenario with calico's etcd datastore (not part of make test).
molecule-calico-etcd: setup  ## molecule: scenario default with calico_datastore etcd, lab down
	molecule reset -s default
	KUBEFORGE_DEFAULT_LAB_ARGS="--var calico_datastore=etcd" molecule test -s default

# The day-2 scenarios, each starting from the cluster the one before left; the
# first deploys its own starting point (the 5-node cluster of `default`) when
# the lab has none. The lab is taken down at the end. The upgrade scenario (and
# the redeploy at the previous release that it starts from) runs only with the
# long checks (make test-full): with a cold lab build, make test must fit in
# CI's 90 minutes (docs/testing.md, "The long checks").
KUBEFORGE_FULL_CHECKS ?=
molecule-day2: setup  ## molecule: scale, remove, reset, and (make test-full) upgrade; lab down at the end
	molecule test -s scale
	molecule test -s remove
	$(LAB) kubespray-inventory inventory/lab/kubespray --control-plane 2,3,7 --workers 4,5
	@redeploy=""; if [ "$(KUBEFORGE_FULL_CHECKS)" = 1 ]; then \
	  redeploy="-e kube_version=$$($(VENV)/bin/python tests/lab/scenario.py previous-version)" || exit 1; \
	fi; \
	echo KUBEFORGE_RESET_REDEPLOY_ARGS="$$redeploy" molecule test -s reset; \
	KUBEFORGE_RESET_INVENTORY=$(CURDIR)/inventory/lab/kubespray/inventory.ini \
	KUBEFORGE_RESET_REDEPLOY_ARGS="$$redeploy" molecule test -s reset
	@if [ "$(KUBEFORGE_FULL_CHECKS)" = 1 ]; then \
	  echo KUBEFORGE_UPGRADE_INVENTORY=$(CURDIR)/inventory/lab/kubespray/inventory.ini molecule test -s upgrade; \
	  KUBEFORGE_UPGRADE_INVENTORY=$(CURDIR)/inventory/lab/kubespray/inventory.ini molecule test -s upgrade; \
	else \
	  echo "the upgrade scenario left out (KUBEFORGE_FULL_CHECKS=1, or make test-full, runs it)"; \
	fi
	$(LAB) down

# What make test runs: `default` keeps its cluster (--destroy=never) for the
# quick conformance specs (make conformance-quick without its lab-up, which
# would rewrite the calico inventory) and as the starting point of the day-2
# scenarios, which take the lab down at the end.
# --destroy=never also skips the opening destroy, which is what clears molecule's
# state: a state left saying "created" (an earlier run, or any checkout with the
# same directory name: molecule keys its state on that name) would skip create
# and deploy onto whatever lab is up. `molecule reset` clears it first.
molecule-all: setup  ## molecule: default, then the quick conformance specs and the day-2 scenarios on its cluster
	molecule reset -s default
	molecule test -s default --destroy=never
	$(CONFORMANCE) build
	$(CONFORMANCE) run --quick --procs $(CONFORMANCE_PROCS)
	$(MAKE) molecule-day2

# make test's scenarios with the long checks that make test leaves out
# (tests/lab/fullchecks.py: the CA rotation, the interrupted upgrade, ...;
# docs/testing.md lists them): over CI's 90 minutes, so not part of make test.
test-full: setup  ## the molecule scenarios of make test with every long check (about 2 hours)
	KUBEFORGE_FULL_CHECKS=1 $(MAKE) molecule-all

lab-test: setup  ## integration tests of the lab itself (brings a small lab up and down)
	$(PYTEST) tests/integration/test_lab.py

# Replaces the lab's nodes with fresh ones (the mirror and registry stay) and
# leaves a 6-node cluster at the default version; only on an idle machine.
bench: setup  ## speed figures against their targets: fresh deploy, no-op, scale, apiserver restart, upgrade per host (LAB_ARGS too)
	$(VENV)/bin/python tests/lab/bench.py $(LAB_ARGS)

# Replaces the lab's nodes at each size; takes about 45 minutes for 3,6,9,12.
SIZES ?= 3,6,9,12
bench-growth: setup  ## how fresh, scale --limit and no-op runs grow with the lab's size (SIZES=3,6,9,12; docs/scale.md)
	$(VENV)/bin/python tests/lab/bench.py --growth $(SIZES) $(LAB_ARGS)

# The upstream conformance suite of the default release against the lab cluster
# (tests/lab/conformance.py): builds e2e.test and the images its specs run
# (cached like the lab's other builds), brings the lab up (CONFORMANCE_NODES,
# LAB_ARGS) and deploys the cluster unless one runs at the default version (a
# running one is tested as it is). Reports: inventory/lab/artifacts/conformance/.
# 6 nodes: some specs need two schedulable nodes without taints, and the lab's
# layout taints its control plane (node1-3) and its ingress node (node5).
CONFORMANCE_PROCS ?= 4
CONFORMANCE_NODES ?= 6
CONFORMANCE := $(VENV)/bin/python tests/lab/conformance.py
conformance conformance-quick conformance-cluster: NODES = $(CONFORMANCE_NODES)

conformance-build: setup  ## build e2e.test and the conformance images (cached), push them to the lab registry
	$(CONFORMANCE) build

conformance-cluster: lab-up
	$(CONFORMANCE) build
	$(VENV)/bin/python tests/lab/scenario.py ensure-cluster inventory/lab/hosts.yml

conformance: conformance-cluster  ## the [Conformance] specs (parallel, then [Serial]) on the lab cluster; reports in inventory/lab/artifacts/conformance/
	$(CONFORMANCE) run --procs $(CONFORMANCE_PROCS)

conformance-quick: conformance-cluster  ## the conformance specs of networking, DNS, Services, pods, ConfigMaps/Secrets, service accounts (6-8 min)
	$(CONFORMANCE) run --quick --procs $(CONFORMANCE_PROCS)

# The add-ons' pods, and `kubectl top nodes` once metrics-server has scraped
# every kubelet (its first values come within a minute of the rollout).
demo: lab-up  ## bring up a 5-node lab, deploy an HA cluster onto it, show the nodes and add-ons
	ansible-playbook -i inventory/lab/hosts.yml cluster.yml
	ansible -i inventory/lab/hosts.yml 'kube_control_plane[0]' -m ansible.builtin.shell -a \
	  'kubectl get nodes -o wide && kubectl get pods -A -o wide && kubectl get storageclass,ingressclass,gatewayclass \
	   && helm version --short && for i in $$(seq 24); do kubectl top nodes 2>/dev/null && break; sleep 5; done'

# The node image; the lab's build with preflight-test beside it; then the
# scenarios with lint, unit and the conformance suite's build beside them at the
# lowest CPU priority (tests/tools/make_test.sh says why; docs/testing.md has
# the figures).
test: setup  ## everything CI runs
	tests/tools/make_test.sh $(MAKE)
