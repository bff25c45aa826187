"""The official Python `kubernetes` client against `cox server`: create, get, list with a
label selector, strategic and merge patches, watch from a resourceVersion, delete.

Usage: client_flows.py KUBECONFIG. Prints "python client: N passed, 0 failed" or raises."""

import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    checks = 0

    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python", labels={"lang": "python"}), data={"a": "1"})
    created = core.create_namespaced_config_map("default", cm)
    assert created.metadata.uid, created
    rv = created.metadata.resource_version
    checks += 1

    got = core.read_namespaced_config_map("from-python", "default")
    assert got.data == {"a": "1"}, got.data
    listed = core.list_namespaced_config_map("default", label_selector="lang=python")
    assert [i.metadata.name for i in listed.items] == ["from-python"], listed.items
    checks += 1

    # The client sends strategic merge patches for dict bodies.
    patched = core.patch_namespaced_config_map("from-python", "default", {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}, patched.data
    checks += 1

    deploy = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="py-web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "py-web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "py-web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("default", deploy)
    scaled = apps.patch_namespaced_deployment_scale("py-web", "default", {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4, scaled
    assert apps.read_namespaced_deployment("py-web", "default").spec.strategy.type == "RollingUpdate"
    checks += 1

    events = []
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=rv,
        field_selector="metadata.name=from-python", timeout_seconds=10,
    )
    core.delete_namespaced_config_map("from-python", "default")
    for event in stream:
        events.append(event["type"])
        if event["type"] == "DELETED":
            break
    assert events == ["MODIFIED", "DELETED"], events
    checks += 1

    try:
        core.read_namespaced_config_map("from-python", "default")
        raise AssertionError("deleted config map still readable")
    except ApiException as err:
        assert err.status == 404, err
    checks += 1
    print(f"python client: {checks} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1])
