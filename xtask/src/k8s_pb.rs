//! Reads `k8s-pb`'s prost structs: each message's fields with their tags, protobuf types and
//! the upstream markers (`+patchStrategy=...`, `+listType=...`) in their doc comments.
//!
//! `k8s-pb`'s module path mirrors the proto package (`api::core::v1` is `k8s.io.api.core.v1`);
//! its type names are prost's UpperCamelCase of the proto names (`PodIp` for `PodIP`), which
//! `schema` corrects.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use syn::ext::IdentExt;
use syn::{Attribute, Expr, GenericArgument, Item, Lit, LitStr, PathArguments, Type};

/// A Rust module path, e.g. `["api", "core", "v1"]`.
pub type Module = Vec<String>;

pub struct PbMessage {
    pub module: Module,
    /// The prost struct's name.
    pub rust_name: String,
    pub docs: Vec<String>,
    pub fields: Vec<PbField>,
}

pub struct PbField {
    /// The Rust field name without `r#`.
    pub rust_name: String,
    pub tag: u32,
    pub ty: PbType,
    pub repeated: bool,
    pub docs: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PbScalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    Float,
}

/// A struct named by a field's type: its module and prost name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeRef {
    pub module: Module,
    pub rust_name: String,
}

pub enum PbType {
    Scalar(PbScalar),
    Message(TypeRef),
    Map { key: PbScalar, value: PbMapValue },
}

pub enum PbMapValue {
    Scalar(PbScalar),
    Message(TypeRef),
}

/// Every message under `src` (the crate's `src` directory), in file order.
pub fn read(src: &Path) -> Result<Vec<PbMessage>> {
    let mut files = Vec::new();
    collect_mod_files(src, &mut files)?;
    files.sort();
    let mut messages = Vec::new();
    for file in files {
        let module: Module = file
            .parent()
            .and_then(|dir| dir.strip_prefix(src).ok())
            .context("module file outside the source directory")?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let parsed =
            syn::parse_file(&text).with_context(|| format!("parsing {}", file.display()))?;
        for item in parsed.items {
            if let Item::Struct(item) = item {
                if !derives_message(&item.attrs)? {
                    continue;
                }
                let rust_name = item.ident.unraw().to_string();
                let fields = item
                    .fields
                    .iter()
                    .map(|field| read_field(&module, field))
                    .collect::<Result<Vec<_>>>()
                    .with_context(|| format!("in {} {rust_name}", module.join("::")))?;
                messages.push(PbMessage {
                    docs: docs(&item.attrs),
                    module: module.clone(),
                    rust_name,
                    fields,
                });
            }
        }
    }
    Ok(messages)
}

fn collect_mod_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_mod_files(&path, files)?;
        } else if path.file_name().is_some_and(|name| name == "mod.rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether the struct derives `::prost::Message`.
fn derives_message(attrs: &[Attribute]) -> Result<bool> {
    let mut message = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        attr.parse_nested_meta(|meta| {
            if meta
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "Message")
            {
                message = true;
            }
            Ok(())
        })?;
    }
    Ok(message)
}

/// The doc comment's lines, trimmed.
fn docs(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta.require_name_value().ok()?.value {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => Some(s.value().trim().to_owned()),
            _ => None,
        })
        .collect()
}

/// What a `#[prost(...)]` attribute says.
#[derive(Default)]
struct ProstAttr {
    scalar: Option<PbScalar>,
    message: bool,
    map: Option<String>,
    repeated: bool,
    tag: Option<u32>,
}

fn read_field(module: &Module, field: &syn::Field) -> Result<PbField> {
    let rust_name = field
        .ident
        .as_ref()
        .context("unnamed field in a message")?
        .unraw()
        .to_string();
    let mut prost = ProstAttr::default();
    let mut seen = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("prost")) {
        seen = true;
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "string" => prost.scalar = Some(PbScalar::String),
                "bool" => prost.scalar = Some(PbScalar::Bool),
                "int32" => prost.scalar = Some(PbScalar::Int32),
                "int64" => prost.scalar = Some(PbScalar::Int64),
                "double" => prost.scalar = Some(PbScalar::Double),
                "float" => prost.scalar = Some(PbScalar::Float),
                "bytes" => {
                    // `bytes = "vec"` names the Rust representation only.
                    if meta.input.peek(syn::Token![=]) {
                        meta.value()?.parse::<LitStr>()?;
                    }
                    prost.scalar = Some(PbScalar::Bytes);
                }
                "message" => prost.message = true,
                "map" | "btree_map" => prost.map = Some(meta.value()?.parse::<LitStr>()?.value()),
                "optional" | "boxed" => {}
                "repeated" => prost.repeated = true,
                "packed" => {
                    // proto2 `repeated` scalars are unpacked; decoders accept both encodings.
                    meta.value()?.parse::<LitStr>()?;
                }
                "tag" => {
                    let tag = meta.value()?.parse::<LitStr>()?;
                    prost.tag = Some(tag.value().parse().map_err(|e| meta.error(e))?);
                }
                other => return Err(meta.error(format!("unsupported prost attribute `{other}`"))),
            }
            Ok(())
        })?;
    }
    if !seen {
        bail!("field {rust_name} has no #[prost] attribute");
    }
    let tag = prost
        .tag
        .with_context(|| format!("field {rust_name} has no tag"))?;
    let ty = match (prost.scalar, prost.message, prost.map) {
        (Some(scalar), false, None) => PbType::Scalar(scalar),
        (None, true, None) => PbType::Message(innermost_struct(module, &field.ty)?),
        (None, false, Some(map)) => map_type(module, &map, &field.ty)?,
        _ => bail!("field {rust_name} has no single protobuf type"),
    };
    Ok(PbField {
        rust_name,
        tag,
        ty,
        repeated: prost.repeated,
        docs: docs(&field.attrs),
    })
}

/// A map field's key and value from `btree_map = "string, message"` and, for message values,
/// the Rust type `BTreeMap<String, V>`.
fn map_type(module: &Module, spec: &str, ty: &Type) -> Result<PbType> {
    let (key, value) = spec
        .split_once(',')
        .with_context(|| format!("map spec `{spec}`"))?;
    let key = scalar(key.trim()).with_context(|| format!("map key in `{spec}`"))?;
    let value = match value.trim() {
        "message" => {
            let args = generic_args(ty).context("map type without type arguments")?;
            let [_, value] = args.as_slice() else {
                bail!("map type without two type arguments")
            };
            PbMapValue::Message(innermost_struct(module, value)?)
        }
        other => {
            PbMapValue::Scalar(scalar(other).with_context(|| format!("map value in `{spec}`"))?)
        }
    };
    Ok(PbType::Map { key, value })
}

fn scalar(name: &str) -> Result<PbScalar> {
    Ok(match name {
        "string" => PbScalar::String,
        "bytes" => PbScalar::Bytes,
        "bool" => PbScalar::Bool,
        "int32" => PbScalar::Int32,
        "int64" => PbScalar::Int64,
        "double" => PbScalar::Double,
        "float" => PbScalar::Float,
        other => bail!("unsupported protobuf scalar `{other}`"),
    })
}

/// The struct a message field holds, through `Option`, `Vec` and `Box`, with `super::` resolved
/// against the field's module.
fn innermost_struct(module: &Module, ty: &Type) -> Result<TypeRef> {
    let Type::Path(path) = ty else {
        bail!("message field of a non-path type")
    };
    let last = path.path.segments.last().context("empty type path")?;
    if matches!(last.ident.to_string().as_str(), "Option" | "Vec" | "Box") {
        let args = generic_args(ty).context("wrapper type without a type argument")?;
        let [inner] = args.as_slice() else {
            bail!("wrapper type with several type arguments")
        };
        return innermost_struct(module, inner);
    }
    let mut resolved = module.clone();
    let mut segments = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .peekable();
    if path.path.leading_colon.is_some() || segments.peek().is_some_and(|s| s == "crate") {
        resolved.clear();
        segments.next_if(|s| s == "crate");
    }
    let mut names: Vec<String> = segments.collect();
    let rust_name = names.pop().context("empty type path")?;
    for name in names {
        if name == "super" {
            resolved.pop().context("`super` above the crate root")?;
        } else {
            resolved.push(name);
        }
    }
    Ok(TypeRef {
        module: resolved,
        rust_name,
    })
}

/// The type arguments of the last segment of a path type.
fn generic_args(ty: &Type) -> Option<Vec<&Type>> {
    let Type::Path(path) = ty else { return None };
    let PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    Some(
        args.args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
    )
}
