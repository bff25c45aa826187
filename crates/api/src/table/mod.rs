//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with upstream Kubernetes 1.33's
//! columns and cell values for each built-in kind, and upstream's default table (Name, Created
//! At) for kinds without a printer.
//!
//! The server always prints the wide form: columns of priority 1 are in every table, and kubectl
//! hides them unless asked for `-o wide`. Cells keep upstream's JSON types even where they
//! disagree with the column's declared type (a number in a `string` column, for instance),
//! since clients print what they get.
//!
//! Upstream prints objects decoded from storage, which applies each field's default. Coxswain may
//! store an object without them, so printers read the defaulted fields they show (replicas,
//! service type, volume phase, and so on) with upstream's default, and print what upstream would.

use serde_json::{Map, Value, json};

use crate::validation::FieldError;

/// A row's cells from values of mixed JSON types: strings, integers, booleans.
macro_rules! cells {
    ($($cell:expr),* $(,)?) => {
        vec![$(serde_json::Value::from($cell)),*]
    };
}

mod age;

/// Go's RFC 3339 times, read: the protobuf encoder writes them as seconds and nanoseconds.
pub(crate) use age::{NANOS_PER_SECOND, parse_rfc3339};
mod apps;
mod autoscaling;
mod batch;
mod cells;
mod coordination;
mod core;
mod discovery;
mod networking;
mod policy;
mod quantity;
mod rbac;
mod scheduling;
mod storage;

#[cfg(test)]
mod tests;

/// The API group and version of the Table and of the rows' partial objects.
const META_API_VERSION: &str = "meta.k8s.io/v1";

/// What each row's `object` carries (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `"object": null`.
    None,
    /// A `PartialObjectMetadata` with the object's whole `metadata` (kubectl's default).
    #[default]
    Metadata,
    /// The object itself (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Parses the query parameter; absent or empty means `Metadata`. The error is the message
    /// of upstream's 400 BadRequest.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or_default() {
            "" | "Metadata" => Ok(Self::Metadata),
            "Object" => Ok(Self::Object),
            "None" => Ok(Self::None),
            other => {
                let error = FieldError::invalid(
                    "includeObject",
                    other,
                    "must be 'Metadata', 'Object', 'None', or empty",
                );
                Err(format!("Unable to convert to Table as requested: {error}"))
            }
        }
    }
}

/// The Table for `objects` of one resource (`group`, and `resource` the plural as in
/// [`crate::registry::Resource`]), rendered at `now` (seconds since the Unix epoch).
/// `list_metadata` is the list's metadata (`resourceVersion`, `continue`,
/// `remainingItemCount`), or a single object's `resourceVersion`. Objects are given as served:
/// with `IncludeObject::Object` each row carries its object unchanged.
pub fn table(
    group: &str,
    resource: &str,
    objects: &[Value],
    include: IncludeObject,
    now: i64,
    list_metadata: Value,
) -> Value {
    let printer = printer(group, resource);
    let columns = printer.map_or(DEFAULT_COLUMNS, |p| p.columns);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let (cells, conditions) = match printer {
                Some(p) => ((p.cells)(object, now), p.conditions.and_then(|c| c(object))),
                None => (default_cells(object), None),
            };
            row(cells, conditions, object, include)
        })
        .collect();
    // Upstream's printers start from an empty list, its default convertor from nil: an empty
    // list prints `[]` from a printer and `null` from the default table.
    let rows = match printer {
        None if rows.is_empty() => Value::Null,
        _ => Value::Array(rows),
    };
    json!({
        "kind": "Table",
        "apiVersion": META_API_VERSION,
        "metadata": table_metadata(list_metadata),
        "columnDefinitions": columns.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// One column definition (`metav1.TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    name: &'static str,
    /// The OpenAPI type: `string`, `integer`, `boolean`, `date`.
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    /// 0 for the columns `kubectl get` shows, 1 for those only `-o wide` shows.
    priority: u8,
}

impl Column {
    const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Self {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    const fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, "string", description)
    }

    const fn integer(name: &'static str, description: &'static str) -> Self {
        Self::new(name, "integer", description)
    }

    const fn boolean(name: &'static str, description: &'static str) -> Self {
        Self::new(name, "boolean", description)
    }

    /// The same column, shown only by `-o wide`.
    const fn wide(self) -> Self {
        Self {
            priority: 1,
            ..self
        }
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// `ObjectMeta.name`'s documentation, the description of every Name column.
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `ObjectMeta.creationTimestamp`'s documentation, the description of every Age column.
const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const NAME: Column = Column {
    format: "name",
    ..Column::string("Name", NAME_DESCRIPTION)
};
const AGE: Column = Column::string("Age", CREATION_TIMESTAMP_DESCRIPTION);
const CONTAINERS: Column = Column::string("Containers", "Names of each container in the template.");
const IMAGES: Column = Column::string(
    "Images",
    "Images referenced by each container in the template.",
);

/// Upstream's default table convertor, for kinds without a printer.
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Created At", "date", CREATION_TIMESTAMP_DESCRIPTION),
];

/// Name, then the creation time as an RFC 3339 date (not an age); Go's zero time when unset.
fn default_cells(object: &Value) -> Vec<Value> {
    let created = age::timestamp(object.pointer("/metadata/creationTimestamp"));
    cells![
        cells::name(object),
        age::format_rfc3339(created.unwrap_or(age::ZERO_TIME)),
    ]
}

/// How one kind prints: its columns and the cells of one object.
#[derive(Debug, Clone, Copy)]
struct Printer {
    columns: &'static [Column],
    /// The cells of one object at `now` (seconds since the epoch), one per column.
    cells: fn(&Value, i64) -> Vec<Value>,
    /// The row's `conditions`, for the kinds upstream marks (completed pods).
    conditions: Option<fn(&Value) -> Option<Value>>,
}

impl Printer {
    const fn new(columns: &'static [Column], cells: fn(&Value, i64) -> Vec<Value>) -> Self {
        Self {
            columns,
            cells,
            conditions: None,
        }
    }
}

/// The printer of a resource, by group and plural; `None` for the default table.
fn printer(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("", "namespaces") => &core::NAMESPACE,
        ("", "pods") => &core::pod::POD,
        ("", "services") => &core::service::SERVICE,
        ("", "endpoints") => &core::service::ENDPOINTS,
        ("", "configmaps") => &core::CONFIG_MAP,
        ("", "secrets") => &core::SECRET,
        ("", "serviceaccounts") => &core::SERVICE_ACCOUNT,
        ("", "nodes") => &core::node::NODE,
        ("", "events") | ("events.k8s.io", "events") => &core::event::EVENT,
        ("", "persistentvolumes") => &core::volume::PERSISTENT_VOLUME,
        ("", "persistentvolumeclaims") => &core::volume::PERSISTENT_VOLUME_CLAIM,
        ("", "replicationcontrollers") => &core::REPLICATION_CONTROLLER,
        ("", "podtemplates") => &core::POD_TEMPLATE,
        ("", "resourcequotas") => &core::RESOURCE_QUOTA,
        ("apps", "deployments") => &apps::DEPLOYMENT,
        ("apps", "replicasets") => &apps::REPLICA_SET,
        ("apps", "statefulsets") => &apps::STATEFUL_SET,
        ("apps", "daemonsets") => &apps::DAEMON_SET,
        ("apps", "controllerrevisions") => &apps::CONTROLLER_REVISION,
        ("batch", "jobs") => &batch::JOB,
        ("batch", "cronjobs") => &batch::CRON_JOB,
        ("autoscaling", "horizontalpodautoscalers") => &autoscaling::HORIZONTAL_POD_AUTOSCALER,
        ("coordination.k8s.io", "leases") => &coordination::LEASE,
        ("discovery.k8s.io", "endpointslices") => &discovery::ENDPOINT_SLICE,
        ("networking.k8s.io", "ingresses") => &networking::INGRESS,
        ("networking.k8s.io", "ingressclasses") => &networking::INGRESS_CLASS,
        ("networking.k8s.io", "networkpolicies") => &networking::NETWORK_POLICY,
        ("policy", "poddisruptionbudgets") => &policy::POD_DISRUPTION_BUDGET,
        ("rbac.authorization.k8s.io", "rolebindings") => &rbac::ROLE_BINDING,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => &rbac::CLUSTER_ROLE_BINDING,
        ("storage.k8s.io", "storageclasses") => &storage::STORAGE_CLASS,
        ("scheduling.k8s.io", "priorityclasses") => &scheduling::PRIORITY_CLASS,
        _ => return None,
    })
}

/// One `metav1.TableRow`; `conditions` is omitted when empty, `object` never (`null` for
/// `IncludeObject::None`, as upstream's empty `RawExtension` encodes).
fn row(
    cells: Vec<Value>,
    conditions: Option<Value>,
    object: &Value,
    include: IncludeObject,
) -> Value {
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => object.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": META_API_VERSION,
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    };
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    if let Some(conditions) = conditions {
        row.insert("conditions".into(), conditions);
    }
    row.insert("object".into(), object);
    Value::Object(row)
}

/// The list's metadata with upstream's `omitempty`: no null or empty-string entries.
fn table_metadata(list_metadata: Value) -> Value {
    let Value::Object(map) = list_metadata else {
        return json!({});
    };
    let kept: Map<String, Value> = map
        .into_iter()
        .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
        .collect();
    Value::Object(kept)
}
