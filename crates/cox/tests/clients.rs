//! Client libraries against `cox server`: kube-rs (Rust) here; the same create, get, list,
//! patch, watch and delete flows as kubectl, through typed k8s-openapi objects.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::collections::BTreeMap;

use cluster::Cluster;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A kube-rs client from the cluster's admin kubeconfig, run inside its network namespace.
async fn client(cluster: &Cluster) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn configmap(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

#[test]
fn kube_rs_crud_patch_and_watch() {
    let cluster = Cluster::start();
    // The client must reach 127.0.0.1 inside the cluster's namespace: run the runtime on a
    // thread that entered it.
    let netns = cluster.netns.clone();
    let kubeconfig_cluster = &cluster;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                cluster::enter_netns(&netns);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let client = client(kubeconfig_cluster).await;
                    let api: Api<ConfigMap> = Api::namespaced(client, "default");
                    let created = api
                        .create(
                            &PostParams::default(),
                            &configmap("from-rust", &[("a", "1")]),
                        )
                        .await
                        .unwrap();
                    let rv = created.metadata.resource_version.clone().unwrap();
                    assert!(created.metadata.uid.is_some());

                    let mut events = api
                        .watch(
                            &WatchParams::default().fields("metadata.name=from-rust"),
                            &rv,
                        )
                        .await
                        .unwrap()
                        .boxed();

                    let patch = serde_json::json!({"data": {"b": "2"}});
                    let patched = api
                        .patch(
                            "from-rust",
                            &PatchParams::default(),
                            &Patch::Strategic(&patch),
                        )
                        .await
                        .unwrap();
                    assert_eq!(
                        patched.data.unwrap().get("b").map(String::as_str),
                        Some("2")
                    );
                    let merge = serde_json::json!({"metadata": {"labels": {"lang": "rust"}}});
                    api.patch("from-rust", &PatchParams::default(), &Patch::Merge(&merge))
                        .await
                        .unwrap();

                    let listed = api
                        .list(&ListParams::default().labels("lang=rust"))
                        .await
                        .unwrap();
                    assert_eq!(listed.items.len(), 1);
                    let got = api.get("from-rust").await.unwrap();
                    assert_eq!(got.data.unwrap().len(), 2);

                    api.delete("from-rust", &DeleteParams::default())
                        .await
                        .unwrap();
                    let err = api.get("from-rust").await.unwrap_err();
                    assert!(
                        matches!(err, kube::Error::Api(ref status) if status.code == 404),
                        "{err}"
                    );

                    let mut kinds = Vec::new();
                    while kinds.len() < 3 {
                        match events.try_next().await.unwrap() {
                            Some(WatchEvent::Added(_)) => kinds.push("ADDED"),
                            Some(WatchEvent::Modified(_)) => kinds.push("MODIFIED"),
                            Some(WatchEvent::Deleted(_)) => kinds.push("DELETED"),
                            Some(WatchEvent::Bookmark(_)) => {}
                            Some(WatchEvent::Error(e)) => panic!("watch error: {e:?}"),
                            None => break,
                        }
                    }
                    assert_eq!(kinds, ["MODIFIED", "MODIFIED", "DELETED"]);
                });
            })
            .join()
            .unwrap();
    });
}

/// The Python client runs from the project's virtual environment (made by dev/install-deps).
#[test]
fn python_kubernetes_client_flows() {
    let cluster = Cluster::start();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/python/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run dev/install-deps",
        python.display()
    );
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_flows.py");
    let output = cluster.exec(
        &python.display().to_string(),
        &[
            &script.display().to_string(),
            &cluster.kubeconfig().display().to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("python client: 6 passed, 0 failed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A flood of concurrent watches (more than one HTTP/2 connection's stream limit) leaves the
/// server answering, and every watch still sees a change made afterwards.
#[test]
fn a_flood_of_watches_leaves_the_server_healthy() {
    let cluster = Cluster::start();
    let netns = cluster.netns.clone();
    let cluster_ref = &cluster;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                cluster::enter_netns(&netns);
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let api: Api<ConfigMap> = Api::namespaced(client(cluster_ref).await, "default");
                    let rv = api
                        .list(&ListParams::default())
                        .await
                        .unwrap()
                        .metadata
                        .resource_version
                        .unwrap();
                    let mut streams = Vec::new();
                    for _ in 0..1500 {
                        // Each on a client of its own: a connection can carry at most 1000.
                        let api: Api<ConfigMap> =
                            Api::namespaced(client(cluster_ref).await, "default");
                        streams.push(
                            api.watch(&WatchParams::default(), &rv)
                                .await
                                .unwrap()
                                .boxed(),
                        );
                    }
                    // The server still answers reads and writes.
                    api.create(
                        &PostParams::default(),
                        &configmap("after-flood", &[("a", "1")]),
                    )
                    .await
                    .unwrap();
                    assert!(api.get("after-flood").await.is_ok());
                    // And every watch sees the write.
                    let seen = futures::future::join_all(streams.iter_mut().map(|s| async move {
                        matches!(
                            tokio::time::timeout(std::time::Duration::from_secs(30), s.try_next())
                                .await,
                            Ok(Ok(Some(WatchEvent::Added(_))))
                        )
                    }))
                    .await;
                    assert_eq!(seen.iter().filter(|s| **s).count(), 1500);
                });
            })
            .join()
            .unwrap();
    });
}
