.PHONY: setup test dev cluster chaos lint typecheck bench unit e2e

setup:
	@scripts/setup.sh

## Install what is needed, then run every test (unit and end-to-end against a real LiveKit server).
test: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest

## Run LiveKit, the gateway and the agent worker on 127.0.0.1 in the foreground.
dev: setup
	.venv/bin/python -m devstack

## Many machines on loopback: Redis, two LiveKit nodes, two gateways on PostgreSQL, two workers.
cluster: setup
	.venv/bin/python -m devstack.cluster

## Kill each component of the cluster in turn under live sessions; prints the loss counters (all 0).
chaos: setup
	.venv/bin/python -m devstack.chaos

unit: setup
	.venv/bin/pytest -m unit

e2e: setup
	.venv/bin/pytest -m e2e

bench: setup
	.venv/bin/python -m bench $(if $(QUICK),--quick,)
