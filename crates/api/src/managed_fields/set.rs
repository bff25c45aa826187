//! Sets of field paths, and their `FieldsV1` form.
//!
//! A path is a list of elements, each written as `FieldsV1` writes it: `f:<name>` for a field
//! or a map key, `k:<JSON object>` for an item of a list keyed by some of its fields,
//! `v:<JSON value>` for an item of a set, `i:<index>` for a list position. A set is a tree of
//! them: a node is a *member* when its own path is in the set; its children are the longer
//! paths. In `FieldsV1` a member with no children is `{}`, and a member with children also
//! holds `".": {}`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// Whether this node's path is itself in the set (never for the root).
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// A set holding the given paths.
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a [&'a str]>) -> FieldSet {
        let mut set = FieldSet::new();
        for path in paths {
            set.insert(path.iter().map(|e| (*e).to_owned()));
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Adds `path` (not the root: an empty path adds nothing).
    pub fn insert(&mut self, path: impl IntoIterator<Item = String>) {
        let mut node = self;
        let mut any = false;
        for element in path {
            node = node.children.entry(element).or_default();
            any = true;
        }
        if any {
            node.member = true;
        }
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[&str]) -> bool {
        let mut node = self;
        for element in path {
            match node.children.get(*element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        !path.is_empty() && node.member
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.merge(other);
        out
    }

    /// Adds `other`'s members to this set, in place.
    pub fn merge(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (element, theirs) in &other.children {
            match self.children.get_mut(element) {
                Some(ours) => ours.merge(theirs),
                None => {
                    self.children.insert(element.clone(), theirs.clone());
                }
            }
        }
    }

    /// Takes `other`'s members out of this set, in place; with `recursive`, also every path
    /// under one of them.
    pub fn subtract(&mut self, other: &FieldSet, recursive: bool) {
        if other.member {
            self.member = false;
        }
        self.children
            .retain(|element, ours| match other.children.get(element) {
                Some(theirs) if recursive && theirs.member => false,
                Some(theirs) => {
                    ours.subtract(theirs, recursive);
                    !ours.is_empty()
                }
                None => true,
            });
    }

    /// The members of `self` that are not members of `other`. A path in `other` takes away
    /// only itself, not the paths under it.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.subtract(other, false);
        out
    }

    /// The members of `self` that neither are in `other` nor lie under one of its members.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.subtract(other, true);
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (element, ours) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                let both = ours.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(element.clone(), both);
                }
            }
        }
        out
    }

    /// The `FieldsV1` form.
    pub fn to_fields_v1(&self) -> Value {
        let mut object = Map::new();
        if self.member && !self.children.is_empty() {
            object.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            object.insert(element.clone(), child.to_fields_v1());
        }
        Value::Object(object)
    }

    /// Reads a `FieldsV1` object.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("expected an object, found {value}"))?;
        let mut set = FieldSet::new();
        for (element, child) in object {
            if element == "." {
                continue;
            }
            if !["f:", "k:", "v:", "i:"]
                .iter()
                .any(|prefix| element.starts_with(prefix))
            {
                return Err(format!("unknown path element {element:?}"));
            }
            let mut node = FieldSet::from_fields_v1(child)?;
            let children = child.as_object().map_or(0, Map::len);
            node.member = children == 0 || child.get(".").is_some();
            set.children.insert(element.clone(), node);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_marks_members_with_children_by_a_dot() {
        let set = FieldSet::of([
            &["f:data"][..],
            &["f:data", "f:a"],
            &["f:metadata", "f:labels", "f:app"],
        ]);
        let encoded = set.to_fields_v1();
        assert_eq!(
            encoded,
            json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&encoded), Ok(set));
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!(["f:a"])).is_err());
    }

    #[test]
    fn set_algebra() {
        let a = FieldSet::of([
            &["f:spec"][..],
            &["f:spec", "f:replicas"],
            &["f:spec", "f:paused"],
        ]);
        let b = FieldSet::of([&["f:spec"][..]]);
        // Taking the parent away leaves its children.
        let left = a.difference(&b);
        assert!(!left.contains(&["f:spec"]));
        assert!(left.contains(&["f:spec", "f:replicas"]));
        // Unless it is taken away with everything under it.
        assert!(a.recursive_difference(&b).is_empty());
        let c = FieldSet::of([&["f:spec", "f:replicas"][..]]);
        assert_eq!(a.intersection(&c), c);
        assert_eq!(a.difference(&c).union(&c), a);
        assert!(a.difference(&a).is_empty());
    }
}
