//! The garbage collector's picture of the cluster (upstream's `GraphBuilder` and the
//! decisions of `attemptToDeleteItem`, `pkg/controller/garbagecollector`), as plain data:
//! every object with its owner references and finalizers, indexed by UID and by owner, and
//! what each change means for whom.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// The finalizer with which an owner asks for its dependents to be orphaned.
pub const ORPHAN: &str = "orphan";
/// The finalizer with which an owner waits for its blocking dependents to be deleted.
pub const FOREGROUND: &str = "foregroundDeletion";

/// One object, as far as the collector is concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Which watched resource it is (an index into the collector's resource list).
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub resource_version: Option<String>,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl Node {
    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Deleted in the foreground: waiting for its dependents to go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner UID to the UIDs of the objects that reference it.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.nodes.contains_key(uid)
    }

    /// The UIDs of the objects that reference `owner`.
    pub fn dependents_of(&self, owner: &str) -> Vec<String> {
        self.dependents
            .get(owner)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Records an object as added or changed; returns the UIDs to look at: the object when
    /// it references an owner not known to exist, or when it is being deleted with one of
    /// the collector's finalizers.
    pub fn apply(&mut self, uid: &str, node: Node) -> Vec<String> {
        let old = self.nodes.insert(uid.to_owned(), node.clone());
        if let Some(old) = &old {
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(uid);
                    if set.is_empty() {
                        self.dependents.remove(&owner.uid);
                    }
                }
            }
        }
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.to_owned());
        }
        let mut check = Vec::new();
        let owners_changed = old.as_ref().is_none_or(|o| o.owners != node.owners);
        let absent_owner = node.owners.iter().any(|o| !self.nodes.contains_key(&o.uid));
        let collector_finalizer =
            node.deleting && (node.has_finalizer(ORPHAN) || node.has_finalizer(FOREGROUND));
        if (owners_changed && absent_owner) || collector_finalizer {
            check.push(uid.to_owned());
        }
        // An owner waiting in the foreground looks again when a reference to it goes.
        if let Some(old) = &old {
            for removed in old.owners.iter().filter(|o| !node.owners.contains(o)) {
                if self
                    .nodes
                    .get(&removed.uid)
                    .is_some_and(Node::deleting_dependents)
                {
                    check.push(removed.uid.clone());
                }
            }
        }
        check
    }

    /// Forgets a deleted object; returns the UIDs to look at: its dependents, and its owners
    /// that wait for their dependents to go.
    pub fn delete(&mut self, uid: &str) -> Vec<String> {
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        for owner in &node.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
        let mut check = self.dependents_of(uid);
        check.extend(
            node.owners
                .iter()
                .filter(|o| {
                    self.nodes
                        .get(&o.uid)
                        .is_some_and(Node::deleting_dependents)
                })
                .map(|o| o.uid.clone()),
        );
        check
    }

    /// After a re-list of `resource`: forgets its objects the list no longer has (deleted
    /// while the watch was down), as [`Graph::delete`] does.
    pub fn retain_listed(&mut self, resource: usize, listed: &HashSet<String>) -> Vec<String> {
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(uid, node)| node.resource == resource && !listed.contains(*uid))
            .map(|(uid, _)| uid.clone())
            .collect();
        gone.iter().flat_map(|uid| self.delete(uid)).collect()
    }
}

/// What an owner reference leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner is gone (or was replaced by another object of the same name).
    Dangling,
    /// The owner is being deleted in the foreground.
    WaitingForDependents,
}

/// What to do with an object that has owner references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// Some owner is solid: only drop the references to these (gone or leaving) owners.
    RemoveReferences(Vec<String>),
    /// No owner is solid: delete the object, in the foreground when an owner waits for it
    /// and it has dependents of its own.
    Delete {
        foreground: bool,
    },
}

/// Upstream's `attemptToDeleteItem` decision, from the state of each owner (by UID).
pub fn decide(owners: &[(String, OwnerState)], has_dependents: bool) -> Decision {
    if owners.is_empty() {
        return Decision::Keep;
    }
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Solid);
    if solid {
        let leaving: Vec<String> = owners
            .iter()
            .filter(|(_, s)| *s != OwnerState::Solid)
            .map(|(uid, _)| uid.clone())
            .collect();
        return if leaving.is_empty() {
            Decision::Keep
        } else {
            Decision::RemoveReferences(leaving)
        };
    }
    let waiting = owners
        .iter()
        .any(|(_, s)| *s == OwnerState::WaitingForDependents);
    Decision::Delete {
        foreground: waiting && has_dependents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("rs-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn node(owners: &[&str]) -> Node {
        Node {
            resource: 0,
            namespace: Some("default".into()),
            name: "x".into(),
            resource_version: None,
            owners: owners.iter().map(|o| owner(o)).collect(),
            finalizers: Vec::new(),
            deleting: false,
        }
    }

    #[test]
    fn decides_as_upstream_attempt_to_delete() {
        use OwnerState::*;
        let o = |uid: &str, state| (uid.to_owned(), state);
        assert_eq!(decide(&[], false), Decision::Keep);
        assert_eq!(decide(&[o("a", Solid)], false), Decision::Keep);
        assert_eq!(
            decide(&[o("a", Solid), o("b", Dangling)], false),
            Decision::RemoveReferences(vec!["b".into()])
        );
        assert_eq!(
            decide(&[o("a", Dangling), o("b", Dangling)], true),
            Decision::Delete { foreground: false }
        );
        assert_eq!(
            decide(&[o("a", WaitingForDependents)], true),
            Decision::Delete { foreground: true }
        );
        assert_eq!(
            decide(&[o("a", WaitingForDependents)], false),
            Decision::Delete { foreground: false }
        );
    }

    #[test]
    fn a_dependent_of_an_unknown_owner_is_checked_and_a_deleted_owner_checks_its_dependents() {
        let mut graph = Graph::default();
        assert_eq!(graph.apply("pod", node(&["rs"])), ["pod"]);
        assert!(graph.apply("rs", node(&[])).is_empty());
        // The same references again: nothing new to look at.
        assert!(graph.apply("pod", node(&["rs"])).is_empty());
        assert_eq!(graph.dependents_of("rs"), ["pod"]);
        assert_eq!(graph.delete("rs"), ["pod"]);
        assert!(graph.delete("rs").is_empty());
        assert_eq!(graph.delete("pod"), Vec::<String>::new());
        assert!(graph.dependents_of("rs").is_empty());
    }

    #[test]
    fn owners_deleting_in_the_foreground_hear_about_departures() {
        let mut graph = Graph::default();
        let mut owner_node = node(&[]);
        owner_node.deleting = true;
        owner_node.finalizers = vec![FOREGROUND.into()];
        assert_eq!(graph.apply("rs", owner_node), ["rs"]);
        graph.apply("pod", node(&["rs"]));
        assert_eq!(graph.delete("pod"), ["rs"]);
        graph.apply("pod2", node(&["rs"]));
        assert_eq!(graph.apply("pod2", node(&[])), ["rs"], "released");
    }

    #[test]
    fn a_relist_forgets_what_it_no_longer_lists() {
        let mut graph = Graph::default();
        graph.apply("rs", node(&[]));
        graph.apply("pod", node(&["rs"]));
        let listed: HashSet<String> = ["pod".to_owned()].into();
        assert_eq!(graph.retain_listed(0, &listed), ["pod"]);
        assert!(!graph.contains("rs"));
    }
}
