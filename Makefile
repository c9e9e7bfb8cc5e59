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

.PHONY: help setup lint unit lab-build lab-up lab-down lab-test demo test

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

lab-build: setup  ## build the lab's binaries, mirror and images (cached)
	$(LAB) build

lab-up: setup  ## bring up the local lab (NODES=5 by default, 1-9)
	$(LAB) up --nodes $(NODES)

lab-down: setup  ## remove the lab's containers, volumes and network
	$(LAB) down

lab-test: setup  ## integration tests of the lab itself (brings a small lab up and down)
	$(PYTEST) tests/integration/test_lab.py

demo: lab-up  ## bring up a 5-node lab and show it answering Ansible
	ansible -i inventory/lab/hosts.yml all -m ansible.builtin.ping

test: lint unit lab-test  ## everything CI runs
