//! Discovery documents, built from the registry: the legacy ones (`APIVersions`,
//! `APIGroupList`, `APIGroup`, `APIResourceList`) and aggregated discovery
//! (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`), which kubectl asks for first.

use cox_api::registry::{self, GROUPS, Resource};
use serde_json::{Value, json};

fn group_versions(group: &str) -> Option<&'static [&'static str]> {
    GROUPS.iter().find(|(g, _)| *g == group).map(|(_, v)| *v)
}

fn version_entry(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

fn group_entry(group: &str, versions: &[&str]) -> Value {
    let listed: Vec<Value> = versions.iter().map(|v| version_entry(group, v)).collect();
    json!({
        "name": group,
        "versions": listed,
        "preferredVersion": version_entry(group, versions[0]),
    })
}

/// `GET /api`
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `GET /apis`
pub fn groups() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|(g, v)| group_entry(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`
pub fn group(group: &str) -> Option<Value> {
    let versions = group_versions(group)?;
    let mut entry = group_entry(group, versions);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

fn scope(resource: &Resource) -> &'static str {
    if resource.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    }
}

/// `GET /api/v1`, `GET /apis/<group>/<version>`
pub fn resources(group: &str, version: &str) -> Option<Value> {
    if !registry::serves(group, version) {
        return None;
    }
    let mut entries = Vec::new();
    for resource in registry::group_version(group, version) {
        let mut entry = json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": resource.verbs,
        });
        if !resource.short_names.is_empty() {
            entry["shortNames"] = json!(resource.short_names);
        }
        if !resource.categories.is_empty() {
            entry["categories"] = json!(resource.categories);
        }
        entries.push(entry);
        for sub in resource.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", resource.plural, sub.name),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": sub.kind,
                "verbs": sub.verbs,
            });
            if !sub.group.is_empty() || !sub.version.is_empty() {
                entry["group"] = json!(sub.group);
                entry["version"] = json!(sub.version);
            }
            entries.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

fn aggregated_version(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = registry::group_version(group, version)
        .map(|resource| {
            let mut entry = json!({
                "resource": resource.plural,
                "responseKind": {"group": "", "version": "", "kind": resource.kind},
                "scope": scope(resource),
                "singularResource": resource.singular,
                "verbs": resource.verbs,
            });
            if !resource.short_names.is_empty() {
                entry["shortNames"] = json!(resource.short_names);
            }
            if !resource.categories.is_empty() {
                entry["categories"] = json!(resource.categories);
            }
            if !resource.subresources.is_empty() {
                let subs: Vec<Value> = resource
                    .subresources
                    .iter()
                    .map(|sub| {
                        json!({
                            "subresource": sub.name,
                            "responseKind": {"group": sub.group, "version": sub.version, "kind": sub.kind},
                            "verbs": sub.verbs,
                        })
                    })
                    .collect();
                entry["subresources"] = json!(subs);
            }
            entry
        })
        .collect();
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

fn aggregated_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| aggregated_version(group, v))
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
}

/// Aggregated discovery: `/api` (core only) or `/apis` (every named group).
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group("", &["v1"])]
    } else {
        GROUPS.iter().map(|(g, v)| aggregated_group(g, v)).collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_resource_list_has_subresources_after_their_parent() {
        let list = resources("apps", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let at = names.iter().position(|n| *n == "deployments").unwrap();
        assert_eq!(
            &names[at..at + 3],
            ["deployments", "deployments/scale", "deployments/status"]
        );
        let scale = &list["resources"][at + 1];
        assert_eq!(
            (
                scale["group"].as_str(),
                scale["version"].as_str(),
                scale["kind"].as_str()
            ),
            (Some("autoscaling"), Some("v1"), Some("Scale"))
        );
        assert!(
            list["resources"][at + 2].get("group").is_none(),
            "same group-version: no group field"
        );
        assert!(resources("apps", "v9").is_none());
    }

    #[test]
    fn aggregated_discovery_shape() {
        let core = aggregated(true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let eviction = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "eviction")
            .unwrap();
        assert_eq!(
            eviction["responseKind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        let groups = aggregated(false);
        let autoscaling = groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "autoscaling")
            .unwrap();
        let versions: Vec<&str> = autoscaling["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v2", "v1"], "preferred version first");
    }

    #[test]
    fn group_list_prefers_the_first_version() {
        let autoscaling = group("autoscaling").unwrap();
        assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
        assert!(group("nope.example.com").is_none());
        assert_eq!(groups()["groups"][0]["name"], "apps");
    }
}
