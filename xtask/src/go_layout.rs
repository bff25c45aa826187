//! Reads `xtask/go-layout.txt`: how upstream's Go types hold each field (a pointer, a value
//! with or without `omitempty`, a struct by value), which k8s-pb and k8s-openapi do not carry,
//! and puts it on the schema's messages.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use crate::schema::{Held, Message};

/// The file, relative to the workspace root.
pub const PATH: &str = "xtask/go-layout.txt";

/// Each listed message's fields (by JSON name) and how Go holds them.
pub type Layout = BTreeMap<String, BTreeMap<String, Held>>;

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Layout> {
    let mut layout = Layout::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let what = || format!("{PATH} line {}", number + 1);
        let mut words = line.split_whitespace();
        let short = words.next().with_context(what)?;
        let name = match short.strip_prefix("meta.v1.") {
            Some(rest) => format!("k8s.io.apimachinery.pkg.apis.meta.v1.{rest}"),
            None => format!("k8s.io.api.{short}"),
        };
        let mut fields = BTreeMap::new();
        for word in words {
            let (json, how) = word.split_once('=').unwrap_or((word, ""));
            let held = match how {
                "" => Held::OmitEmpty,
                "ptr" => Held::Pointer,
                "null" => Held::PointerOrNull,
                "zero" => Held::Zero,
                "list" => Held::ListOrNull,
                "struct" => Held::Struct,
                other => bail!("{}: field {json}: unknown holding {other:?}", what()),
            };
            if fields.insert(json.to_owned(), held).is_some() {
                bail!("{}: field {json} listed twice", what());
            }
        }
        if layout.insert(name, fields).is_some() {
            bail!("{}: message {short} listed twice", what());
        }
    }
    Ok(layout)
}

/// Marks the listed messages' fields. A listed message must have exactly the listed fields
/// (inlined ones aside). Returns the messages the file does not list, and those it lists that
/// the schema leaves out (the Go types of messages no served kind uses).
pub fn apply(
    messages: &mut [Message],
    layout: &Layout,
) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let mut unlisted = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for message in messages.iter_mut() {
        let Some(listed) = layout.get(&message.name) else {
            unlisted.insert(message.name.clone());
            continue;
        };
        seen.insert(message.name.clone());
        let mut missing: BTreeSet<&str> = listed.keys().map(String::as_str).collect();
        for field in message.fields.iter_mut().filter(|f| !f.inline) {
            let Some(held) = listed.get(&field.json) else {
                bail!(
                    "{PATH}: {} has no field {:?}, which k8s-pb has",
                    message.name,
                    field.json
                );
            };
            missing.remove(field.json.as_str());
            field.held = Some(*held);
        }
        if !missing.is_empty() {
            bail!(
                "{PATH}: {} lists fields k8s-pb does not have: {missing:?}",
                message.name
            );
        }
        message.go_layout = true;
    }
    let unused = layout
        .keys()
        .filter(|m| !seen.contains(*m))
        .cloned()
        .collect();
    Ok((unlisted, unused))
}
