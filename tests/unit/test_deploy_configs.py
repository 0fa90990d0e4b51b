"""deploy/ is checked by tools, not by eye: its files are what the cluster template renders (the
template `make cluster` and `make chaos` run), and its Kubernetes manifests pass the Kubernetes
schemas that kubernetes-validate ships. A compose file cannot be checked here: no container engine
exists on these machines for `docker compose config`."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from devstack import config_template as template
from devstack.cluster import ClusterNode

pytestmark = pytest.mark.unit
K8S_VERSION = "1.37.0"


@pytest.mark.parametrize(
    "path", sorted(template.rendered_deploy()), ids=lambda p: str(p.relative_to(template.REPO))
)
def test_deploy_file_is_the_template_rendered(path: Path) -> None:
    assert path.read_text() == template.rendered_deploy()[path], (
        f"{path.relative_to(template.REPO)} differs from the template: edit "
        "devstack/config_template.py, then run `python -m devstack.config_template`"
    )


@pytest.mark.parametrize(
    "path", sorted((template.DEPLOY / "k8s").glob("*.yaml")), ids=lambda p: p.name
)
def test_kubernetes_manifest_is_valid(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    """The check can fail: a field Kubernetes does not know is refused."""
    deployment = template.deploy_gateway()[0]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_livekit_nodes_in_kubernetes_run_the_deploy_config() -> None:
    config_map = next(d for d in template.deploy_livekit() if d["kind"] == "ConfigMap")
    assert yaml.safe_load(config_map["data"]["livekit.yaml"]) == yaml.safe_load(
        (template.DEPLOY / "livekit.yaml").read_text()
    )


def test_cluster_and_deploy_differ_only_in_addresses_and_network() -> None:
    """Same template: the loopback node of `make cluster` and the deploy node share every
    setting but where they listen, what they dial and how they find their address."""
    node = ClusterNode(redis="127.0.0.1:6379", webhook_url="http://127.0.0.1:1/v1/livekit/webhook")
    local, deploy = node.config(), template.deploy_livekit_config()
    for conf in (local, deploy):
        conf.pop("keys", None)
        conf.pop("port")
        conf.pop("bind_addresses")
        conf.pop("rtc")
        conf["redis"].pop("address")
        conf["webhook"].pop("urls")
        conf["webhook"].pop("api_key")
    assert local == deploy


def test_cluster_nodes_stay_on_loopback() -> None:
    """No traffic leaves the machine: no external IP lookup, STUN on an unused loopback port."""
    conf = ClusterNode(redis="127.0.0.1:6379", webhook_url="http://127.0.0.1:1/hook").config()
    rtc = conf["rtc"]
    assert conf["bind_addresses"] == ["127.0.0.1"]
    assert rtc["use_external_ip"] is False
    assert rtc["node_ip"] == "127.0.0.1"
    assert all(s.startswith("127.0.0.1:") for s in rtc["stun_servers"])
    assert conf["redis"] == {"address": "127.0.0.1:6379"}


def test_deploy_env_is_the_cluster_env() -> None:
    """The gateway and worker settings deploy/ sets are the ones the cluster sets."""
    gateway = template.deploy_gateway()[0]["spec"]["template"]["spec"]["containers"][0]
    worker = template.deploy_worker()[0]["spec"]["template"]["spec"]["containers"][0]
    gateway_names = {e["name"] for e in gateway["env"]}
    worker_names = {e["name"] for e in worker["env"]}
    local_gateway = template.gateway_env(
        livekit_url="ws://x", livekit_public_url="ws://x", host="h"
    )
    local_worker = template.worker_env(livekit_url="ws://x", gateway_url="http://x", host="h")
    assert set(local_gateway) <= gateway_names
    assert set(local_worker) <= worker_names
