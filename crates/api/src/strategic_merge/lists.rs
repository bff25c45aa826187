//! Lists under the `merge` strategy: lists of objects merged element by element on their
//! merge key, lists of scalars merged as sets, and the order upstream gives the result.
//!
//! The order follows upstream's `mergeSlice` and `normalizeElementOrder` step for step,
//! including where it surprises: an element the original lacks goes before the original's
//! elements it cannot be compared with, so `kubectl patch` adding a container puts it first.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use super::fields::FieldMeta;
use super::{DELETE, DIRECTIVE, MERGE, REPLACE, SmpError, go_format, merge_map, replacement};

/// A merged list.
#[derive(Debug)]
pub(super) struct Merged {
    pub items: Vec<Value>,
    /// The original list as Go's backing array is left once elements were deleted from and
    /// appended to it in place: upstream orders a `$setElementOrder` list's server-only elements
    /// by this, not by the original list, and its results show it.
    pub backing: Vec<Value>,
}

/// The shape of a JSON value, as Go's `reflect.TypeOf` tells the values of a decoded document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Shape {
    pub(super) fn of(value: &Value) -> Shape {
        match value {
            Value::Object(_) => Shape::Object,
            Value::Array(_) => Shape::Array,
            Value::String(_) => Shape::String,
            Value::Number(_) => Shape::Number,
            Value::Bool(_) => Shape::Bool,
            Value::Null => Shape::Null,
        }
    }

    /// Go's name for the type, as upstream's errors print it.
    pub(super) fn go_type(self) -> &'static str {
        match self {
            Shape::Object => "map[string]interface {}",
            Shape::Array => "[]interface {}",
            Shape::String => "string",
            Shape::Number => "float64",
            Shape::Bool => "bool",
            Shape::Null => "<nil>",
        }
    }
}

/// The shape shared by every element of `lists`.
pub(super) fn element_shape(lists: &[&[Value]]) -> Result<Shape, SmpError> {
    let mut shape = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let this = Shape::of(item);
        match shape {
            None if this == Shape::Array => return Err(SmpError::ListOfLists),
            None => shape = Some(this),
            Some(first) if first != this => {
                let lists: Vec<String> = lists.iter().map(|l| go_format_list(l)).collect();
                return Err(SmpError::MixedElementTypes {
                    lists: format!("[{}]", lists.join(" ")),
                });
            }
            Some(_) => {}
        }
    }
    shape.ok_or(SmpError::NoElements)
}

/// Merges `patch` into `original`, a list of `field`. A `delete_list` is the values of a
/// `$deleteFromPrimitiveList` directive.
pub(super) fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: FieldMeta,
    delete_list: bool,
) -> Result<Merged, SmpError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(Merged {
            items: original,
            backing: Vec::new(),
        });
    }
    let by_key = element_shape(&[&original, &patch])? == Shape::Object;
    let key = field.merge_key;
    let merge = if by_key {
        if key.is_empty() {
            return Err(SmpError::NoMergeKeyDeclared {
                field: field.json.to_owned(),
            });
        }
        merge_objects(original, patch, field)?
    } else {
        if delete_list {
            let kept = original
                .iter()
                .filter(|item| !patch.iter().any(|d| go_equal(item, d)))
                .cloned()
                .collect();
            return Ok(Merged {
                items: kept,
                backing: original,
            });
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(&patch) {
            if !merged.iter().any(|m| go_equal(m, item)) {
                merged.push(item.clone());
            }
        }
        ListMerge {
            merged,
            patch_order: patch,
            server_order: original.clone(),
            backing: original,
        }
    };
    let (in_patch, server_only) = partition(merge.merged, &merge.patch_order, key)?;
    let items = normalize_order(
        in_patch,
        server_only,
        &merge.patch_order,
        &merge.server_order,
        key,
        by_key,
    )?;
    Ok(Merged {
        items,
        backing: merge.backing,
    })
}

/// A merged list before it is ordered.
#[derive(Debug)]
struct ListMerge {
    merged: Vec<Value>,
    /// The patch's elements, less directives, in the patch's order.
    patch_order: Vec<Value>,
    /// The original's elements, less deletions, in the original's order.
    server_order: Vec<Value>,
    /// See [`Merged::backing`].
    backing: Vec<Value>,
}

/// Merges lists of objects on `field`'s merge key, applying the `$patch` elements first.
fn merge_objects(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: FieldMeta,
) -> Result<ListMerge, SmpError> {
    let key = field.merge_key;
    let mut backing = original.clone();
    let mut current = original;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(element) = &item else {
            return Err(bad_arg_type(Shape::Object, &item));
        };
        let Some(directive) = element.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let Some(value) = element.get(key) else {
                    return Err(no_merge_key(element, key));
                };
                while let Some(at) = find_by_key(&current, key, value)? {
                    current.remove(at);
                    shift_left(&mut backing, at, current.len() + 1);
                }
            }
            // The rest of the list is still read, for its deletions and its errors.
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(SmpError::MergeDirectiveInList),
            _ => {
                return Err(SmpError::BadPatchType {
                    directive: go_format(directive),
                    map: go_format_map(element),
                });
            }
        }
    }
    if replace {
        let items: Vec<Value> = plain
            .into_iter()
            .map(|item| replacement(item, field.ty))
            .collect();
        return Ok(ListMerge {
            merged: items.clone(),
            patch_order: Vec::new(),
            server_order: items,
            backing,
        });
    }
    let server_order = current.clone();
    for item in &plain {
        let Value::Object(element) = item else {
            return Err(bad_arg_type(Shape::Object, item));
        };
        let Some(value) = element.get(key) else {
            return Err(no_merge_key(element, key));
        };
        match find_by_key(&current, key, value)? {
            Some(at) => {
                let existing = match current.get_mut(at).map(Value::take) {
                    Some(Value::Object(existing)) => existing,
                    // `find_by_key` only finds objects.
                    _ => Map::new(),
                };
                let merged = merge_map(existing, element.clone(), field.ty)?;
                if let Some(slot) = current.get_mut(at) {
                    *slot = Value::Object(merged);
                }
            }
            None => {
                if let Some(slot) = backing.get_mut(current.len()) {
                    *slot = item.clone();
                }
                current.push(replacement(item.clone(), field.ty));
            }
        }
    }
    Ok(ListMerge {
        merged: current,
        patch_order: plain,
        server_order,
        backing,
    })
}

/// Deletes the element at `at` from the first `len` elements of `backing` as Go's
/// `append(s[:at], s[at+1:]...)` does: the later elements move left and the last slot keeps
/// its value.
fn shift_left(backing: &mut [Value], at: usize, len: usize) {
    let Some(window) = backing.get_mut(at..len) else {
        return;
    };
    let n = window.len();
    if n < 2 {
        return;
    }
    window.rotate_left(1);
    window[n - 1] = window[n - 2].clone();
}

/// Splits `items` into those found in `by` and the others, each kept in order.
pub(super) fn partition(
    items: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let mut found = Vec::with_capacity(items.len());
    let mut rest = Vec::new();
    for item in items {
        let present = if key.is_empty() {
            by.iter().any(|b| go_equal(b, &item))
        } else {
            let Value::Object(element) = &item else {
                return Err(bad_arg_type(Shape::Object, &item));
            };
            let Some(value) = element.get(key) else {
                return Err(no_merge_key(element, key));
            };
            find_by_key(by, key, value)?.is_some()
        };
        if present {
            found.push(item);
        } else {
            rest.push(item);
        }
    }
    Ok((found, rest))
}

/// Sorts the patch's elements by `patch_order` and the server's by `server_order`, then
/// interleaves them by the server's order where both are in it, the patch's first otherwise.
pub(super) fn normalize_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    by_key: bool,
) -> Result<Vec<Value>, SmpError> {
    let in_patch = sort_by(in_patch, patch_order, key, by_key)?;
    let server_only = sort_by(server_only, server_order, key, by_key)?;
    let mut left = VecDeque::from(server_only);
    let mut right = VecDeque::from(in_patch);
    let mut out = Vec::with_capacity(left.len() + right.len());
    loop {
        let take_left = match (left.front(), right.front()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, key, by_key), position(server_order, r, key, by_key)),
                (Some(l), Some(r)) if l < r
            ),
        };
        let next = if take_left {
            left.pop_front()
        } else {
            right.pop_front()
        };
        out.extend(next);
    }
    Ok(out)
}

/// A stable sort of `items` by their position in `order`, with upstream's comparison: an item
/// missing from `order` counts as smaller than anything. Elements carrying `$patch: delete`
/// go last.
fn sort_by(
    items: Vec<Value>,
    order: &[Value],
    key: &str,
    by_key: bool,
) -> Result<Vec<Value>, SmpError> {
    let (mut items, deletions) = if by_key {
        check_merge_keys(&items, key)?;
        check_merge_keys(order, key)?;
        items.into_iter().partition::<Vec<Value>, _>(|item| {
            item.get(DIRECTIVE).and_then(Value::as_str) != Some(DELETE)
        })
    } else {
        (items, Vec::new())
    };
    // Insertion sort, as Go's `sort.SliceStable` does on short lists: with upstream's
    // comparison, which is not a total order, another algorithm could give another result.
    let less = |a: &Value, b: &Value| match (
        position(order, a, key, by_key),
        position(order, b, key, by_key),
    ) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    };
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(&items[j], &items[j - 1]) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
    items.extend(deletions);
    Ok(items)
}

/// Every element of `list` is an object holding `key`.
fn check_merge_keys(list: &[Value], key: &str) -> Result<(), SmpError> {
    for item in list {
        let Value::Object(element) = item else {
            return Err(bad_arg_type(Shape::Object, item));
        };
        if !element.contains_key(key) {
            return Err(no_merge_key(element, key));
        }
    }
    Ok(())
}

/// Where `item` is in `list`: by merge key for objects, by value otherwise.
fn position(list: &[Value], item: &Value, key: &str, by_key: bool) -> Option<usize> {
    if by_key {
        let wanted = item.get(key);
        list.iter().position(|x| match (x.get(key), wanted) {
            (Some(a), Some(b)) => go_equal(a, b),
            (a, b) => a.is_none() && b.is_none(),
        })
    } else {
        list.iter().position(|x| go_equal(x, item))
    }
}

/// The index of the first object in `list` whose `key` is `value`.
pub(super) fn find_by_key(
    list: &[Value],
    key: &str,
    value: &Value,
) -> Result<Option<usize>, SmpError> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(element) = item else {
            return Err(SmpError::NotAMap { index });
        };
        if element.get(key).is_some_and(|v| go_equal(v, value)) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Checks that the patch list's elements (less deletions and directives) come in the order of
/// the `$setElementOrder` list.
pub(super) fn check_order(patch: &[Value], order: &[Value], key: &str) -> Result<(), SmpError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(patch.len());
    for item in patch {
        if !key.is_empty() {
            if !item.is_object() {
                return Err(bad_arg_type(Shape::Object, item));
            }
            if item.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE) {
                continue;
            }
        }
        kept.push(item);
    }
    let (mut p, mut s) = (0, 0);
    while let (Some(item), Some(wanted)) = (kept.get(p), order.get(s)) {
        if item.get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_equal(item, wanted, key)? {
            p += 1;
        }
        s += 1;
    }
    if p < kept.len() && s >= order.len() {
        return Err(SmpError::SetElementOrderMismatch {
            patch: go_format_list(patch),
            order: go_format_list(order),
        });
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, key: &str) -> Result<bool, SmpError> {
    if key.is_empty() {
        return Ok(go_equal(left, right));
    }
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        let odd = if left.is_object() { right } else { left };
        return Err(bad_arg_type(Shape::Object, odd));
    };
    match (l.get(key), r.get(key)) {
        (Some(a), Some(b)) => Ok(go_equal(a, b)),
        (None, _) => Err(no_merge_key(l, key)),
        (_, None) => Err(no_merge_key(r, key)),
    }
}

/// Go's `==` on decoded JSON values: numbers are all `float64`.
fn go_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn no_merge_key(element: &Map<String, Value>, key: &str) -> SmpError {
    SmpError::NoMergeKey {
        map: go_format_map(element),
        key: key.to_owned(),
    }
}

pub(super) fn bad_arg_type(expected: Shape, found: &Value) -> SmpError {
    SmpError::BadArgType {
        expected: expected.go_type(),
        found: Shape::of(found).go_type(),
    }
}

fn go_format_map(map: &Map<String, Value>) -> String {
    go_format(&Value::Object(map.clone()))
}

fn go_format_list(list: &[Value]) -> String {
    go_format(&Value::Array(list.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(v: Value) -> Vec<Value> {
        match v {
            Value::Array(items) => items,
            other => panic!("not a list: {other}"),
        }
    }

    #[test]
    fn deleting_in_place_leaves_the_backing_array_as_go_does() {
        // (list, index deleted, backing array after)
        let cases = [
            (json!([1, 2, 3]), 0, json!([2, 3, 3])),
            (json!([1, 2, 3]), 1, json!([1, 3, 3])),
            (json!([1, 2, 3]), 2, json!([1, 2, 3])),
            (json!([1]), 0, json!([1])),
        ];
        for (list, at, want) in cases {
            let mut backing = items(list.clone());
            let len = backing.len();
            shift_left(&mut backing, at, len);
            assert_eq!(Value::Array(backing), want, "{list} without index {at}");
        }
    }

    #[test]
    fn order_checks() {
        // (patch list, order, merge key, whether it matches)
        let cases = [
            (
                json!([{"n": 1}, {"n": 3}]),
                json!([{"n": 1}, {"n": 2}, {"n": 3}]),
                "n",
                true,
            ),
            (
                json!([{"n": 3}, {"n": 1}]),
                json!([{"n": 1}, {"n": 2}, {"n": 3}]),
                "n",
                false,
            ),
            (
                json!([{"n": 3, "$patch": "delete"}, {"n": 1}]),
                json!([{"n": 1}]),
                "n",
                true,
            ),
            (json!([3, 1]), json!([1, 2, 3]), "", false),
            (json!([1, 3]), json!([1, 2, 3]), "", true),
            (json!([]), json!([1]), "", true),
        ];
        for (patch, order, key, ok) in cases {
            let got = check_order(&items(patch.clone()), &items(order.clone()), key);
            assert_eq!(got.is_ok(), ok, "{patch} in {order}: {got:?}");
        }
    }

    #[test]
    fn element_shapes() {
        let cases = [
            (json!([1, 2]), json!([3]), Ok(Shape::Number)),
            (json!([{"a": 1}]), json!([]), Ok(Shape::Object)),
            (json!([[1]]), json!([]), Err(SmpError::ListOfLists)),
            (json!([]), json!([]), Err(SmpError::NoElements)),
            (
                json!(["a"]),
                json!([{"a": 1}]),
                Err(SmpError::MixedElementTypes {
                    lists: "[[a] [map[a:1]]]".into(),
                }),
            ),
        ];
        for (a, b, want) in cases {
            let (a, b) = (items(a), items(b));
            assert_eq!(element_shape(&[&a, &b]), want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn interleaving_prefers_the_patch_where_the_server_order_cannot_tell() {
        // (patch items, server-only items, server order, result), by value.
        let cases = [
            (
                json!([4]),
                json!([1, 2, 3]),
                json!([1, 2, 3]),
                json!([4, 1, 2, 3]),
            ),
            (
                json!([3, 1]),
                json!([2]),
                json!([1, 2, 3]),
                json!([2, 3, 1]),
            ),
            (
                json!([2, 3]),
                json!([4]),
                json!([1, 2, 4]),
                json!([2, 3, 4]),
            ),
            (
                json!([2, 3]),
                json!([4]),
                json!([2, 4, 3]),
                json!([2, 4, 3]),
            ),
        ];
        for (in_patch, server_only, server, want) in cases {
            let patch_order = items(in_patch.clone());
            let got = normalize_order(
                items(in_patch.clone()),
                items(server_only.clone()),
                &patch_order,
                &items(server.clone()),
                "",
                false,
            );
            assert_eq!(
                got,
                Ok(items(want)),
                "{in_patch} and {server_only} by {server}"
            );
        }
    }
}
