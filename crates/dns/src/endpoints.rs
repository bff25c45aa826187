//! The `kube-dns` Service's Endpoints, which the node agent running this DNS publishes.

use std::net::IpAddr;

/// Writes the `kube-dns` Endpoints in kube-system: this node's DNS at `address:port`
/// (UDP `dns` and TCP `dns-tcp`). The Service has no selector, so these Endpoints are what
/// the proxy (through their mirrored EndpointSlice) sends cluster DNS traffic to. Retries
/// until the API takes them.
pub async fn publish_endpoints(
    client: kube::Client,
    address: IpAddr,
    port: u16,
    node_name: String,
) {
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
    use kube::api::{Api, PostParams};
    let api: Api<Endpoints> = Api::namespaced(client, "kube-system");
    let port = |name: &str, protocol: &str| EndpointPort {
        name: Some(name.into()),
        port: i32::from(port),
        protocol: Some(protocol.into()),
        app_protocol: None,
    };
    let subsets = vec![EndpointSubset {
        addresses: Some(vec![EndpointAddress {
            ip: address.to_string(),
            node_name: Some(node_name),
            ..Default::default()
        }]),
        not_ready_addresses: None,
        ports: Some(vec![port("dns", "UDP"), port("dns-tcp", "TCP")]),
    }];
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        let result = match api.get_opt("kube-dns").await {
            Ok(Some(existing)) if existing.subsets.as_ref() == Some(&subsets) => return,
            Ok(Some(mut existing)) => {
                existing.subsets = Some(subsets.clone());
                api.replace("kube-dns", &PostParams::default(), &existing)
                    .await
                    .map(drop)
            }
            Ok(None) => {
                let mut created = Endpoints {
                    subsets: Some(subsets.clone()),
                    ..Default::default()
                };
                created.metadata.name = Some("kube-dns".into());
                created.metadata.labels =
                    Some([("k8s-app".to_owned(), "kube-dns".to_owned())].into());
                api.create(&PostParams::default(), &created).await.map(drop)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "publishing the cluster DNS endpoints; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
}
