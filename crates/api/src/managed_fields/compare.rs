//! What changed between two versions of an object, as sets of field paths: upstream's
//! structured comparison, walking both objects along the kind's schema.
//!
//! - A scalar, an atomic struct, map or list, and a message with a JSON form of its own (a
//!   time, a quantity) is a leaf: added, removed or modified as a whole.
//! - A struct or map is walked field by field; one that is empty (or absent) on both sides is
//!   a leaf, so that `{}` appearing is seen.
//! - A list keyed by some of its items' fields (`+listType=map`, or merged by a patch merge
//!   key) is walked item by item, each named `k:{...}`; a set (`+listType=set`, or merged with
//!   no key) by value, `v:...`. Any other list is atomic.
//! - A struct, map, list or item that appears or goes is itself added or removed, besides what
//!   it holds: that is the `"."` of `FieldsV1`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::FieldSet;
use crate::schema::{self, Field, Granularity, Kind, ListType, MapValue, Message};

/// The paths added, removed and modified from one version to the next.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub removed: FieldSet,
    pub modified: FieldSet,
}

/// How a value is walked.
#[derive(Debug, Clone, Copy)]
pub(super) enum Type {
    Leaf,
    Struct(&'static Message),
    /// A map with values of this type.
    Map(Element),
    /// A list keyed by these fields of its items (a set when there are none).
    List(Element, &'static [&'static str]),
    /// Not in the schema: objects are walked as maps, anything else is a leaf.
    Unknown,
}

/// The type of a map's values or a list's items.
#[derive(Debug, Clone, Copy)]
pub(super) enum Element {
    Scalar,
    Message(&'static str),
}

impl Type {
    /// The type of a kind's objects.
    pub(super) fn of_message(name: &str) -> Type {
        match schema::message(name) {
            Some(message) if !schema::OPAQUE.contains(&message.name) => {
                if message.struct_type == Granularity::Atomic {
                    Type::Leaf
                } else {
                    Type::Struct(message)
                }
            }
            Some(_) => Type::Leaf,
            None => Type::Unknown,
        }
    }

    fn of_element(element: Element) -> Type {
        match element {
            Element::Scalar => Type::Leaf,
            Element::Message(name) => Type::of_message(name),
        }
    }

    pub(super) fn of_field(field: &'static Field) -> Type {
        let element = match field.kind {
            Kind::Scalar(_) | Kind::Map { .. } => Element::Scalar,
            Kind::Message(name) => Element::Message(name),
        };
        if field.repeated {
            let patch = &field.patch;
            return match patch.list_type {
                ListType::Atomic => Type::Leaf,
                ListType::Set => Type::List(element, &[]),
                ListType::Map => Type::List(element, patch.list_map_keys),
                ListType::Unspecified if patch.strategy.merges() => {
                    if patch.merge_key.is_empty() {
                        Type::List(element, &[])
                    } else {
                        Type::List(element, std::slice::from_ref(&field.patch.merge_key))
                    }
                }
                ListType::Unspecified => Type::Leaf,
            };
        }
        match field.kind {
            Kind::Scalar(_) => Type::Leaf,
            Kind::Map { value, .. } => {
                if field.patch.map_type == Granularity::Atomic {
                    return Type::Leaf;
                }
                Type::Map(match value {
                    MapValue::Scalar(_) => Element::Scalar,
                    MapValue::Message(name) => Element::Message(name),
                })
            }
            Kind::Message(name) => {
                if field.patch.struct_type == Granularity::Atomic {
                    Type::Leaf
                } else {
                    Type::of_message(name)
                }
            }
        }
    }

    /// The type of the value at `key` in an object of this type.
    pub(super) fn child(self, key: &str) -> Type {
        match self {
            Type::Struct(message) => match message.resolve_json(key) {
                Some(field) => Type::of_field(field),
                None => Type::Unknown,
            },
            Type::Map(element) => Type::of_element(element),
            Type::Leaf | Type::List(..) | Type::Unknown => Type::Unknown,
        }
    }
}

/// Compares `old` and `new`, objects of type `ty`.
pub(super) fn compare(old: &Value, new: &Value, ty: Type) -> Result<Comparison, String> {
    let mut walker = Walker {
        path: Vec::new(),
        out: Comparison::default(),
    };
    walker.node(Some(old), Some(new), ty)?;
    Ok(walker.out)
}

struct Walker {
    path: Vec<String>,
    out: Comparison,
}

impl Walker {
    fn path(&self) -> Vec<String> {
        self.path.clone()
    }

    /// One value, present on either side or both.
    fn node(&mut self, old: Option<&Value>, new: Option<&Value>, ty: Type) -> Result<(), String> {
        if old.is_none() && new.is_none() {
            return Ok(());
        }
        let leaf = match ty {
            Type::Leaf => true,
            // Values not in the schema are walked when they are objects, as maps.
            Type::Struct(_) | Type::Map(_) | Type::Unknown => self.object(old, new, ty)?,
            Type::List(element, keys) => self.list(old, new, element, keys)?,
        };
        if leaf {
            self.leaf(old, new);
        } else if old.is_none() {
            self.out.added.insert(self.path());
        } else if new.is_none() {
            self.out.removed.insert(self.path());
        }
        Ok(())
    }

    fn leaf(&mut self, old: Option<&Value>, new: Option<&Value>) {
        match (old, new) {
            (None, Some(_)) => self.out.added.insert(self.path()),
            (Some(_), None) => self.out.removed.insert(self.path()),
            (Some(old), Some(new)) if old != new => self.out.modified.insert(self.path()),
            _ => {}
        }
    }

    /// A struct or map; returns whether it was taken as a leaf.
    fn object(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
        ty: Type,
    ) -> Result<bool, String> {
        let (Some(old_map), Some(new_map)) = (object_or_empty(old), object_or_empty(new)) else {
            return Ok(true);
        };
        if old_map.is_empty() && new_map.is_empty() {
            return Ok(true);
        }
        for (key, old_value) in old_map {
            self.path.push(format!("f:{key}"));
            let result = self.node(Some(old_value), new_map.get(key), ty.child(key));
            self.path.pop();
            result?;
        }
        for (key, new_value) in new_map {
            if !old_map.contains_key(key) {
                self.path.push(format!("f:{key}"));
                let result = self.node(None, Some(new_value), ty.child(key));
                self.path.pop();
                result?;
            }
        }
        Ok(false)
    }

    /// A keyed list or a set; returns whether it was taken as a leaf.
    fn list(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
        element: Element,
        keys: &[&str],
    ) -> Result<bool, String> {
        let (Some(old_items), Some(new_items)) = (array_or_empty(old), array_or_empty(new)) else {
            return Ok(true);
        };
        if old_items.is_empty() && new_items.is_empty() {
            return Ok(true);
        }
        // Items by their path element, in order of first appearance.
        let mut order: Vec<String> = Vec::new();
        let mut sides: HashMap<String, (Vec<&Value>, Vec<&Value>)> = HashMap::new();
        for (items, new_side) in [(old_items, false), (new_items, true)] {
            for item in items {
                let element = item_element(item, keys)?;
                let entry = sides.entry(element.clone()).or_insert_with(|| {
                    order.push(element);
                    (Vec::new(), Vec::new())
                });
                if new_side {
                    entry.1.push(item);
                } else {
                    entry.0.push(item);
                }
            }
        }
        let item_type = Type::of_element(element);
        for element in order {
            let (olds, news) = &sides[&element];
            self.path.push(element);
            // Duplicates (which upstream tolerates in stored objects) are judged whole.
            let result = match (olds.len(), news.len()) {
                (0..=1, 0..=1) => {
                    self.node(olds.first().copied(), news.first().copied(), item_type)
                }
                (2.., 2..) => {
                    if olds != news {
                        self.out.modified.insert(self.path());
                    }
                    Ok(())
                }
                (2.., _) => {
                    let result = match news.first() {
                        Some(new) => self.node(None, Some(new), item_type),
                        None => Ok(()),
                    };
                    self.out.removed.insert(self.path());
                    result
                }
                (_, _) => {
                    let result = match olds.first() {
                        Some(old) => self.node(Some(old), None, item_type),
                        None => Ok(()),
                    };
                    self.out.added.insert(self.path());
                    result
                }
            };
            self.path.pop();
            result?;
        }
        Ok(false)
    }
}

/// The object a value holds: empty for absent or `null`; `None` for another JSON type (a leaf).
fn object_or_empty(value: Option<&Value>) -> Option<&Map<String, Value>> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    match value {
        None | Some(Value::Null) => Some(&EMPTY),
        Some(Value::Object(map)) => Some(map),
        Some(_) => None,
    }
}

/// The items a value holds: none for absent or `null`; `None` for another JSON type.
fn array_or_empty(value: Option<&Value>) -> Option<&[Value]> {
    match value {
        None | Some(Value::Null) => Some(&[]),
        Some(Value::Array(items)) => Some(items),
        Some(_) => None,
    }
}

/// A list item's path element: `k:` with its key fields (sorted by name, as upstream writes
/// them), or `v:` with its value for a set.
fn item_element(item: &Value, keys: &[&str]) -> Result<String, String> {
    if keys.is_empty() {
        return Ok(format!("v:{item}"));
    }
    let mut key = std::collections::BTreeMap::new();
    for name in keys {
        match item.get(*name) {
            Some(value) => {
                key.insert(*name, value);
            }
            None => {
                return Err(format!(
                    "associative list with keys has an element that omits key field {name:?}"
                ));
            }
        }
    }
    serde_json::to_string(&key)
        .map(|key| format!("k:{key}"))
        .map_err(|e| e.to_string())
}
