//! The documents of crictl's status commands (`inspect`, `inspectp`, `inspecti`, `info`,
//! `imagefsinfo`): `{"status": <the status message>, <each entry of the verbose info map>}`,
//! keys sorted, several documents as an array.

use std::collections::HashMap;

use super::json::Json;

/// How a status command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StatusFormat {
    Json,
    Yaml,
    Table,
}

/// How a list command prints (`pods`, `ps`, `images`, `stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ListFormat {
    Json,
    Yaml,
    #[default]
    Table,
}

/// A list response as `-o json` or `-o yaml` print it (protobuf field order for JSON).
pub(crate) fn render_list(document: Json, format: ListFormat) -> String {
    match format {
        ListFormat::Json => document.to_pretty() + "\n",
        // `sigs.k8s.io/yaml` sorts keys; crictl prints the YAML with an extra newline.
        ListFormat::Yaml => document.sorted().to_yaml() + "\n",
        ListFormat::Table => String::new(),
    }
}

/// One status document. An info value that is a JSON object is embedded as one; anything else
/// is a string, without surrounding quotes, as crictl does. (crictl fails on an info value that
/// starts with `{` but is not JSON; this keeps it as a string.)
pub(crate) fn status_document(
    status: Option<Json>,
    extra: Vec<(String, Json)>,
    info: &HashMap<String, String>,
) -> Json {
    let mut entries: Vec<(String, Json)> = Vec::new();
    if let Some(status) = status {
        entries.push(("status".to_string(), status));
    }
    entries.extend(extra);
    for (key, value) in info {
        let value = if value.starts_with('{') {
            match serde_json::from_str::<serde_json::Value>(value) {
                Ok(parsed @ serde_json::Value::Object(_)) => Json::from(parsed),
                _ => Json::String(value.clone()),
            }
        } else {
            Json::String(value.trim_matches('"').to_string())
        };
        entries.push((key.clone(), value));
    }
    Json::Object(entries).sorted()
}

/// The documents as crictl prints them: one alone, several as an array. Nothing for none.
pub(crate) fn render_documents(mut documents: Vec<Json>, format: StatusFormat) -> String {
    let document = match documents.len() {
        0 => return String::new(),
        1 => documents.remove(0),
        _ => Json::Array(documents),
    };
    match format {
        StatusFormat::Yaml => document.to_yaml() + "\n",
        StatusFormat::Json | StatusFormat::Table => document.to_pretty() + "\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_values_are_embedded_and_keys_sorted() {
        let info = HashMap::from([
            (
                "info".to_string(),
                r#"{"pid": 42, "config": {"b": 1, "a": 2}}"#.to_string(),
            ),
            ("quoted".to_string(), "\"text\"".to_string()),
            ("broken".to_string(), "{not json".to_string()),
            ("list".to_string(), "[1,2]".to_string()),
        ]);
        let status = Json::object([
            ("state", Json::String("CONTAINER_RUNNING".into())),
            ("id", Json::String("c1".into())),
        ]);
        let document = status_document(Some(status), Vec::new(), &info);
        let expected = r#"{
  "broken": "{not json",
  "info": {
    "config": {
      "a": 2,
      "b": 1
    },
    "pid": 42
  },
  "list": "[1,2]",
  "quoted": "text",
  "status": {
    "id": "c1",
    "state": "CONTAINER_RUNNING"
  }
}
"#;
        assert_eq!(
            render_documents(vec![document], StatusFormat::Json),
            expected
        );
    }

    #[test]
    fn several_documents_make_an_array() {
        let one = status_document(
            Some(Json::object([("id", Json::String("a".into()))])),
            Vec::new(),
            &HashMap::new(),
        );
        let two = status_document(
            Some(Json::object([("id", Json::String("b".into()))])),
            Vec::new(),
            &HashMap::new(),
        );
        let text = render_documents(vec![one, two], StatusFormat::Json);
        assert!(text.starts_with("[\n  {\n    \"status\": {"), "{text}");
        assert_eq!(render_documents(Vec::new(), StatusFormat::Json), "");
        let yaml = render_documents(
            vec![status_document(
                Some(Json::object([("id", Json::String("a".into()))])),
                Vec::new(),
                &HashMap::new(),
            )],
            StatusFormat::Yaml,
        );
        assert_eq!(yaml, "status:\n  id: a\n\n");
    }
}
