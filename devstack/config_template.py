"""One template, two uses: the configuration of a many-machine deployment.

The cluster mode (devstack/cluster.py, `make cluster`, `make chaos`) renders it with loopback
addresses and free ports; `deploy/` holds the same template rendered for real machines
(`python -m devstack.config_template` writes it; tests/unit/test_deploy_configs.py fails when a
file there is not what the template gives). So what the chaos run proves is what deploy/ ships:
LiveKit nodes sharing one Redis, gateways on one PostgreSQL behind one address, and workers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
AGENT_NAME = "voice-agent"


@dataclass(frozen=True)
class LoopbackRtc:
    """A node on one machine's loopback (tests and `make cluster`): no external IP lookup, no STUN
    server anywhere but an unused local port, one UDP port per node."""

    udp_port: int
    stun_port: int


@dataclass(frozen=True)
class PublicRtc:
    """A node on a real machine: its public address found through STUN, a UDP port range."""

    port_range: tuple[int, int] = (50000, 60000)


def livekit_config(
    *,
    port: int,
    rtc_tcp_port: int,
    rtc: LoopbackRtc | PublicRtc,
    redis_address: str,
    webhook_url: str,
    webhook_api_key: str,
    keys: dict[str, str] | None = None,
    bind: str = "127.0.0.1",
) -> dict[str, Any]:
    """A livekit-server node of a cluster. Nodes share rooms through Redis; every node sends its
    webhooks to the gateways' one address. `keys` is None when they come from the environment
    (LIVEKIT_KEYS), as in deploy/."""
    rtc_conf: dict[str, Any] = {"tcp_port": rtc_tcp_port}
    if isinstance(rtc, LoopbackRtc):
        rtc_conf.update(
            {
                "udp_port": rtc.udp_port,
                "use_external_ip": False,
                "node_ip": "127.0.0.1",
                "enable_loopback_candidate": True,
                "ips": {"includes": ["127.0.0.1/32"]},
                "stun_servers": [f"127.0.0.1:{rtc.stun_port}"],
            }
        )
        turn: dict[str, Any] = {"enabled": False}
    else:
        rtc_conf.update(
            {
                "port_range_start": rtc.port_range[0],
                "port_range_end": rtc.port_range[1],
                "use_external_ip": True,
            }
        )
        turn = {"enabled": False}
    conf: dict[str, Any] = {
        "port": port,
        "bind_addresses": [bind],
        "rtc": rtc_conf,
        "turn": turn,
        "redis": {"address": redis_address},
        # Only the gateway creates rooms: a late agent joining a room that was just ended must
        # not bring it back.
        "room": {"auto_create": False, "empty_timeout": 60, "departure_timeout": 10},
        "webhook": {"api_key": webhook_api_key, "urls": [webhook_url]},
        "logging": {"json": True, "level": "info"},
    }
    if keys is not None:
        conf["keys"] = keys
    return conf


def gateway_env(*, livekit_url: str, livekit_public_url: str, host: str) -> dict[str, str]:
    """What a gateway replica of a cluster sets besides its secrets (LiveKit key, database URL,
    bootstrap key). LiveKit is reached through the nodes' one address: any node answers for every
    room, so a replica does not care which node dies."""
    return {
        "LIVEKIT_URL": livekit_url,
        "VOICEGW_LIVEKIT_PUBLIC_URL": livekit_public_url,
        "VOICEGW_HOST": host,
        "VOICEGW_AGENT_NAME": AGENT_NAME,
    }


def worker_env(*, livekit_url: str, gateway_url: str, host: str) -> dict[str, str]:
    """What a worker of a cluster sets besides its LiveKit key: the node it registers with and
    the gateways' one address, where it reports capacity, claims and transcripts."""
    return {
        "LIVEKIT_URL": livekit_url,
        "AGENT_WORKER_AGENT_NAME": AGENT_NAME,
        "AGENT_WORKER_GATEWAY_URL": gateway_url,
        "AGENT_WORKER_HTTP_HOST": host,
    }


# --- deploy/: the template rendered for real machines (Kubernetes names as addresses) -------

DEPLOY_LIVEKIT_PORT = 7880
DEPLOY_GATEWAY_URL = "http://voice-gateway:8080"


def deploy_livekit_config() -> dict[str, Any]:
    return livekit_config(
        port=DEPLOY_LIVEKIT_PORT,
        rtc_tcp_port=7881,
        rtc=PublicRtc(),
        redis_address="redis:6379",
        webhook_url=f"{DEPLOY_GATEWAY_URL}/v1/livekit/webhook",
        webhook_api_key="prodkey",  # the key named in LIVEKIT_KEYS (deploy/env.example)
        bind="0.0.0.0",
    )


def _env_list(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in env.items()]


def _deployment(
    name: str, replicas: int, container: dict[str, Any], pod: dict[str, Any] | None = None
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, **(pod or {}).get("metadata", {})},
                "spec": {**(pod or {}).get("spec", {}), "containers": [container]},
            },
        },
    }


def _service(name: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": ports},
    }


def deploy_gateway() -> list[dict[str, Any]]:
    env = {
        **gateway_env(
            livekit_url=f"ws://livekit:{DEPLOY_LIVEKIT_PORT}",
            livekit_public_url="wss://livekit.example.com",
            host="0.0.0.0",
        ),
        "VOICEGW_METRICS_HOST": "0.0.0.0",
        "VOICEGW_METRICS_PORT": "9090",
    }
    container = {
        "name": "gateway",
        "image": "voice-orchestrator:latest",
        "command": ["python", "-m", "voice_gateway"],
        "envFrom": [{"secretRef": {"name": "voice-orchestrator"}}],
        "env": _env_list(env),
        "ports": [{"containerPort": 8080}, {"containerPort": 9090, "name": "metrics"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
    }
    pod = {
        "metadata": {"annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}}
    }
    return [
        _deployment("voice-gateway", 2, container, pod),
        _service("voice-gateway", [{"port": 8080, "targetPort": 8080}]),
    ]


def deploy_worker() -> list[dict[str, Any]]:
    env = {
        **worker_env(
            livekit_url=f"ws://livekit:{DEPLOY_LIVEKIT_PORT}",
            gateway_url=DEPLOY_GATEWAY_URL,
            host="0.0.0.0",
        ),
        "AGENT_WORKER_METRICS_HOST": "0.0.0.0",
    }
    container = {
        "name": "worker",
        "image": "voice-orchestrator:latest",
        "command": ["python", "-m", "agent_worker", "start"],
        "envFrom": [{"secretRef": {"name": "voice-orchestrator"}}],
        "env": _env_list(env),
        "ports": [{"containerPort": 9464, "name": "metrics"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8081}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "2", "memory": "3Gi"}},
    }
    pod = {
        "metadata": {"annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9464"}},
        # Lets live sessions drain on SIGTERM (AGENT_WORKER_DRAIN_TIMEOUT_SECONDS, 300).
        "spec": {"terminationGracePeriodSeconds": 330},
    }
    return [_deployment("agent-worker", 2, container, pod)]


def deploy_livekit() -> list[dict[str, Any]]:
    """LiveKit nodes on Redis: the node config as a ConfigMap, two nodes on the host network (WebRTC
    needs the node's own address), Redis, and the Services the gateway and workers dial."""
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "livekit-config"},
        "data": {"livekit.yaml": yaml.safe_dump(deploy_livekit_config(), sort_keys=False)},
    }
    node = {
        "name": "livekit",
        "image": "livekit/livekit-server:v1.13.5",
        "args": ["--config", "/etc/livekit/livekit.yaml"],
        "env": [
            {
                "name": "LIVEKIT_KEYS",
                "valueFrom": {
                    "secretKeyRef": {"name": "voice-orchestrator", "key": "LIVEKIT_KEYS"}
                },
            }
        ],
        "ports": [{"containerPort": DEPLOY_LIVEKIT_PORT}, {"containerPort": 7881}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/livekit"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": DEPLOY_LIVEKIT_PORT}},
    }
    pod = {
        "spec": {
            "hostNetwork": True,
            "volumes": [{"name": "config", "configMap": {"name": "livekit-config"}}],
        }
    }
    redis = {
        "name": "redis",
        "image": "redis:7",
        "ports": [{"containerPort": 6379}],
    }
    return [
        config,
        _deployment("livekit", 2, node, pod),
        _service("livekit", [{"port": DEPLOY_LIVEKIT_PORT, "targetPort": DEPLOY_LIVEKIT_PORT}]),
        _deployment("redis", 1, redis),
        _service("redis", [{"port": 6379, "targetPort": 6379}]),
    ]


HEADER = (
    "# Rendered by `python -m devstack.config_template` from devstack/config_template.py, the\n"
    "# template `make cluster` and `make chaos` also run: edit the template, not this file.\n"
)


def rendered_deploy() -> dict[Path, str]:
    """Every file of deploy/ the template owns, with its text."""

    def docs(items: list[dict[str, Any]]) -> str:
        return HEADER + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in items)

    return {
        DEPLOY / "livekit.yaml": HEADER + yaml.safe_dump(deploy_livekit_config(), sort_keys=False),
        DEPLOY / "k8s" / "gateway.yaml": docs(deploy_gateway()),
        DEPLOY / "k8s" / "worker.yaml": docs(deploy_worker()),
        DEPLOY / "k8s" / "livekit.yaml": docs(deploy_livekit()),
    }


def main() -> int:
    for path, text in rendered_deploy().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
