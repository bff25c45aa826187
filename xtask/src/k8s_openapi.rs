//! Reads one Kubernetes version's module of `k8s-openapi` (e.g. `src/v1_33`): each OpenAPI
//! definition's exact name, the JSON name of each of its fields, and the group, version and
//! kind of each resource.
//!
//! The sources are generated and regular, so plain line matching suffices: every file opens
//! with `// Generated from definition io.k8s.api.core.v1.PodStatus`, its deserializer maps each
//! JSON name to a field (`"podIP" => Field::Key_pod_ip,`), and a resource's
//! `impl crate::Resource` carries `const GROUP`, `const VERSION` and `const KIND`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::k8s_pb::Module;

/// One version's definitions, by module.
#[derive(Default)]
pub struct OpenApi {
    pub modules: BTreeMap<Module, Vec<Definition>>,
}

pub struct Definition {
    /// The Go type's name, which is the proto message's name (`PodIP`).
    pub name: String,
    /// Whether it is a struct with named fields, serialized as a JSON object. Types with a JSON
    /// form of their own (`IntOrString`, `Quantity`, `Time`, `RawExtension`) are not.
    pub object: bool,
    /// JSON name by Rust field name (as written in k8s-openapi, e.g. `type_`, `ref_path`).
    pub json_names: BTreeMap<String, String>,
    /// The Rust names of the fields that are not an `Option`: those OpenAPI calls required
    /// (plus `metadata`, which k8s-openapi never leaves out).
    pub required: BTreeSet<String>,
    /// `(group, version, kind)` when k8s-openapi implements `Resource` for it.
    pub resource: Option<(String, String, String)>,
}

impl OpenApi {
    /// The definition in `module` whose name equals `rust_name` up to ASCII case.
    pub fn find(&self, module: &Module, rust_name: &str) -> Option<&Definition> {
        self.modules
            .get(module)?
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(rust_name))
    }
}

/// The release modules under `src` (`v1_33` is `(1, 33)`), sorted.
pub fn releases(src: &Path) -> Result<Vec<((u32, u32), PathBuf)>> {
    let mut releases = Vec::new();
    for entry in std::fs::read_dir(src).with_context(|| format!("listing {}", src.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let release = name.strip_prefix('v').and_then(|v| v.split_once('_'));
        if let Some((major, minor)) = release
            && let (Ok(major), Ok(minor)) = (major.parse(), minor.parse())
            && path.is_dir()
        {
            releases.push(((major, minor), path));
        }
    }
    releases.sort();
    Ok(releases)
}

/// Every definition under `dir`, a release module such as `src/v1_33`.
pub fn read(dir: &Path) -> Result<OpenApi> {
    let mut openapi = OpenApi::default();
    read_dir(dir, &mut Vec::new(), &mut openapi)?;
    for definitions in openapi.modules.values_mut() {
        definitions.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(openapi)
}

fn read_dir(dir: &Path, module: &mut Module, openapi: &mut OpenApi) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            module.push(name);
            read_dir(&path, module, openapi)?;
            module.pop();
        } else if name.ends_with(".rs") && name != "mod.rs" {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if let Some(definition) =
                read_definition(&text).with_context(|| format!("in {}", path.display()))?
            {
                openapi
                    .modules
                    .entry(module.clone())
                    .or_default()
                    .push(definition);
            }
        }
    }
    Ok(())
}

/// The definition a file holds; `None` for the files that are not generated from one.
fn read_definition(text: &str) -> Result<Option<Definition>> {
    let Some(definition) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// Generated from definition "))
    else {
        return Ok(None);
    };
    let name = definition
        .rsplit('.')
        .next()
        .unwrap_or(definition)
        .to_owned();
    let object = text.contains(&format!("pub struct {name} {{"));
    let mut json_names = BTreeMap::new();
    let mut required = BTreeSet::new();
    let mut resource = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some((rust, ty)) = struct_field(line) {
            if !ty.starts_with("Option<") {
                required.insert(rust.to_owned());
            }
        } else if let Some((json, rust)) = json_arm(line) {
            json_names.insert(rust.to_owned(), json.to_owned());
        } else if let Some(value) = const_str(line, "GROUP") {
            resource.0 = Some(value);
        } else if let Some(value) = const_str(line, "VERSION") {
            resource.1 = Some(value);
        } else if let Some(value) = const_str(line, "KIND") {
            resource.2 = Some(value);
        }
    }
    let resource = match resource {
        (Some(group), Some(version), Some(kind)) => Some((group, version, kind)),
        (None, None, None) => None,
        _ => bail!("{name}: a Resource impl without GROUP, VERSION and KIND"),
    };
    Ok(Some(Definition {
        name,
        object,
        json_names,
        required,
        resource,
    }))
}

/// `pub containers: std::vec::Vec<crate::api::core::v1::Container>,` as `("containers", its
/// type)`.
fn struct_field(line: &str) -> Option<(&str, &str)> {
    let (name, ty) = line.strip_prefix("pub ")?.split_once(": ")?;
    let ty = ty.strip_suffix(',')?;
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        .then_some((name, ty))
}

/// `"podIP" => Field::Key_pod_ip,` as `("podIP", "pod_ip")`.
fn json_arm(line: &str) -> Option<(&str, &str)> {
    let (json, rest) = line.strip_prefix('"')?.split_once("\" => Field::Key_")?;
    Some((json, rest.strip_suffix(',').unwrap_or(rest)))
}

/// `const GROUP: &'static str = "apps";` as `"apps"`; `None` for generic impls such as
/// `<T as crate::Resource>::GROUP`.
fn const_str(line: &str, name: &str) -> Option<String> {
    let value = line.strip_prefix(&format!("const {name}: &'static str = \""))?;
    Some(value.strip_suffix("\";")?.to_owned())
}
