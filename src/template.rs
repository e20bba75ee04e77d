//! The workflow template, as far as the emissary reads it (SPEC section 3 step 4).
//!
//! serde_json reads it into the structs below, which hold only the fields the emissary uses;
//! every other field is skipped as it is scanned (serde's `IgnoredAny`: nothing is built for
//! it), so any template the controller writes parses, and a large one costs no more memory
//! than its bytes. A field of the wrong type is an error naming the field's path, as in Go's
//! `encoding/json`, only an object fills a struct, and `null` counts as absent wherever Go
//! accepts it (`sys::read_json`: `null_default`, `object`, `list`, `objects`). Keys match
//! exactly, and a repeated key of a field read is refused: Go also matches keys
//! case-insensitively and keeps the last of a repeated one, which the controller never needs
//! (README's differences, `json-reader`).

use std::path::Path;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use crate::sys::error::{Error, Result};
use crate::sys::fsx;
use crate::sys::read_json::{from_json, list, null_default, object, object_or_default, objects};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Template {
    pub name: Option<String>,
    #[serde(deserialize_with = "object_or_default")]
    pub inputs: Inputs,
    #[serde(deserialize_with = "object_or_default")]
    pub outputs: Outputs,
    /// Only its volume mounts are read (a container has no `source`): one struct for both
    /// is one deserializer less in the binary.
    #[serde(deserialize_with = "object")]
    pub container: Option<Script>,
    #[serde(deserialize_with = "object")]
    pub script: Option<Script>,
    #[serde(deserialize_with = "object")]
    pub container_set: Option<ContainerSet>,
    #[serde(deserialize_with = "objects")]
    pub sidecars: Vec<Named>,
    #[serde(deserialize_with = "object")]
    pub archive_location: Option<ArchiveLocation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Inputs {
    #[serde(deserialize_with = "objects")]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Outputs {
    #[serde(deserialize_with = "objects")]
    pub parameters: Vec<Parameter>,
    #[serde(deserialize_with = "objects")]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Parameter {
    #[serde(deserialize_with = "object")]
    pub value_from: Option<ValueFrom>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ValueFrom {
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Artifact {
    pub name: Option<String>,
    pub path: Option<String>,
    #[serde(deserialize_with = "object")]
    pub archive: Option<ArchiveStrategy>,
}

/// `archive: {tar: {compressionLevel: N}}`, `{none: {}}` or `{zip: {}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ArchiveStrategy {
    #[serde(deserialize_with = "object")]
    pub tar: Option<TarStrategy>,
    #[serde(deserialize_with = "present")]
    pub none: bool,
    #[serde(deserialize_with = "present")]
    pub zip: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TarStrategy {
    pub compression_level: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Script {
    #[serde(deserialize_with = "objects")]
    pub volume_mounts: Vec<VolumeMount>,
    pub source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeMount {
    #[serde(deserialize_with = "null_default")]
    pub mount_path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerSet {
    #[serde(deserialize_with = "objects")]
    pub containers: Vec<ContainerNode>,
    #[serde(deserialize_with = "objects")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(deserialize_with = "object")]
    pub retry_strategy: Option<RetryStrategy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContainerNode {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "list")]
    pub dependencies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RetryStrategy {
    /// Kubernetes' IntOrString; read by `retry`, which refuses what is not an integer.
    pub retries: Option<IntOrString>,
    pub duration: Option<String>,
}

/// A `retries` value: an integer or a string; any other number is refused as it is read,
/// naming the field.
#[derive(Debug, Clone, PartialEq)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Named {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ArchiveLocation {
    pub archive_logs: Option<bool>,
}

/// Whether the field is there and not `null`; its content is not looked at.
fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Option::<IgnoredAny>::deserialize(d).map(|v| v.is_some())
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<IntOrString, E> {
                Ok(IntOrString::Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<IntOrString, E> {
                i64::try_from(n)
                    .map(IntOrString::Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<IntOrString, E> {
                Ok(IntOrString::String(s.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Template {
    pub fn parse(data: &[u8]) -> Result<Template> {
        let fail = |e: String| Error::new(format!("failed to unmarshal template: {e}"));
        /// The whole document: an object, or `null` for the empty template as in Go.
        #[derive(Deserialize)]
        struct Document(#[serde(deserialize_with = "object_or_default")] Template);
        let Document(t) = from_json(data).map_err(fail)?;
        Ok(t)
    }

    /// The template's name, for messages.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// Volume mounts of `container`, else `script`, else `containerSet` (upstream's `GetVolumeMounts`).
    pub fn volume_mounts(&self) -> &[VolumeMount] {
        if let Some(c) = &self.container {
            &c.volume_mounts
        } else if let Some(s) = &self.script {
            &s.volume_mounts
        } else if let Some(cs) = &self.container_set {
            &cs.volume_mounts
        } else {
            &[]
        }
    }

    /// Names of the main containers: the containerSet's members, or `main`.
    pub fn main_container_names(&self) -> Vec<String> {
        match &self.container_set {
            Some(cs) if !cs.containers.is_empty() => {
                cs.containers.iter().map(|c| c.name.clone()).collect()
            }
            _ => vec!["main".to_string()],
        }
    }

    /// The containerSet dependencies of container `name`, in order.
    pub fn dependencies_of(&self, name: &str) -> &[String] {
        self.container_set
            .as_ref()
            .and_then(|cs| cs.containers.iter().find(|c| c.name == name))
            .map_or(&[], |c| c.dependencies.as_slice())
    }

    pub fn is_sidecar(&self, name: &str) -> bool {
        self.sidecars.iter().any(|s| s.name == name)
    }

    pub fn archive_logs(&self) -> bool {
        self.archive_location
            .as_ref()
            .and_then(|a| a.archive_logs)
            .unwrap_or(false)
    }
}

/// Reads `ROOT/template`; only when it does not exist, `ARGO_TEMPLATE` (`offloaded`: the file
/// `offload_path`). The returned bytes are the raw JSON. The shared folder's file must be a
/// regular file, not a link; the offloaded one is a ConfigMap's, whose files are links.
pub fn read(root: &Path, env_template: Option<&[u8]>, offload_path: &Path) -> Result<Vec<u8>> {
    let file = root.join("template");
    match fsx::read_limited(&file, fsx::MAX_JSON, false) {
        Ok(Some(data)) => Ok(data),
        Ok(None) => from_env(env_template, offload_path)?.ok_or_else(|| {
            Error::new(format!(
                "failed to read template: neither {} nor ARGO_TEMPLATE is available",
                file.display()
            ))
        }),
        Err(e) => Err(Error::io("failed to read template", file.display(), e)),
    }
}

/// The template `ARGO_TEMPLATE` gives: its JSON, or with `offloaded` the file at
/// `offload_path`; `None` when the variable is unset or empty.
pub fn from_env(env_template: Option<&[u8]>, offload_path: &Path) -> Result<Option<Vec<u8>>> {
    match env_template {
        None | Some(b"") => Ok(None),
        Some(b"offloaded") => fsx::read_file(offload_path, fsx::MAX_JSON, true)
            .map(Some)
            .map_err(|e| {
                Error::io(
                    "failed to read template: reading",
                    offload_path.display(),
                    e,
                )
            }),
        Some(json) => Ok(Some(json.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_unknown_fields() {
        let t = Template::parse(b"{}").unwrap();
        assert!(t.outputs.artifacts.is_empty());
        assert_eq!(t.main_container_names(), vec!["main"]);
        let t =
            Template::parse(br#"{"foo":1,"outputs":null,"sidecars":null,"metadata":{}}"#).unwrap();
        assert!(t.sidecars.is_empty());
    }

    #[test]
    fn wrong_types_fail() {
        assert!(Template::parse(br#"{"outputs":"x"}"#).is_err());
        assert!(Template::parse(br#"{"sidecars":3}"#).is_err());
        assert!(Template::parse(b"").is_err());
        assert!(Template::parse(b"3").is_err());
        // Go fills a struct from an object only; serde's derive alone would take an array.
        for t in [
            "[]",
            r#"[{"name":"x"}]"#,
            r#"{"outputs":[]}"#,
            r#"{"outputs":{"artifacts":[[]]}}"#,
            r#"{"containerSet":{"retryStrategy":["1"]}}"#,
        ] {
            assert!(Template::parse(t.as_bytes()).is_err(), "{t}");
        }
    }

    #[test]
    fn container_set() {
        let t = Template::parse(br#"{"containerSet":{"containers":[{"name":"a"},{"name":"main","dependencies":["a"]}],"volumeMounts":[{"name":"w","mountPath":"/w"}],"retryStrategy":{"retries":"2","duration":"1s"}},"sidecars":[{"name":"s"}],"archiveLocation":{"archiveLogs":true}}"#).unwrap();
        assert_eq!(t.main_container_names(), vec!["a", "main"]);
        assert_eq!(t.dependencies_of("main"), ["a".to_string()]);
        assert_eq!(t.volume_mounts()[0].mount_path, "/w");
        assert!(t.is_sidecar("s"));
        assert!(t.archive_logs());
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = Template::parse(br#"{"outputs":{"artifacts":[{"name":"a"},{"path":3}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outputs.artifacts[1].path: invalid type"), "{e}");
        assert!(e.contains("line 1 column"), "{e}");
        let e = Template::parse(br#"{"containerSet":{"retryStrategy":{"retries":[]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("containerSet.retryStrategy.retries"), "{e}");
    }

    #[test]
    fn nulls_read_as_go_reads_them() {
        let t = Template::parse(br#"{"name":null,"outputs":{"artifacts":[null,{"name":"b"}]},"containerSet":{"containers":[{"name":"m","dependencies":[null,"a"]}],"volumeMounts":[{"mountPath":null}],"retryStrategy":{"retries":null}},"archiveLocation":{"archiveLogs":null}}"#).unwrap();
        assert_eq!(t.name, None);
        assert_eq!(t.outputs.artifacts.len(), 2);
        assert_eq!(t.outputs.artifacts[0].name, None);
        assert_eq!(t.dependencies_of("m"), ["".to_string(), "a".to_string()]);
        assert_eq!(t.volume_mounts()[0].mount_path, "");
        let cs = t.container_set.as_ref().unwrap();
        assert!(cs.retry_strategy.as_ref().unwrap().retries.is_none());
        assert!(!t.archive_logs());
        assert!(Template::parse(b"null").unwrap().name.is_none());
    }

    #[test]
    fn archive_strategy_and_retries() {
        let t = Template::parse(br#"{"outputs":{"artifacts":[{"archive":{"none":{}}},{"archive":{"tar":{"compressionLevel":9}}},{"archive":{"none":null}}]},"containerSet":{"retryStrategy":{"retries":7}}}"#).unwrap();
        let a = &t.outputs.artifacts;
        assert!(a[0].archive.as_ref().unwrap().none);
        let level = a[1]
            .archive
            .as_ref()
            .unwrap()
            .tar
            .as_ref()
            .unwrap()
            .compression_level;
        assert_eq!(level, Some(9));
        assert!(!a[2].archive.as_ref().unwrap().none);
        let retries = &t.container_set.unwrap().retry_strategy.unwrap().retries;
        assert_eq!(retries, &Some(IntOrString::Int(7)));
    }

    /// Invalid UTF-8 is refused with its line and column, also in a field nobody reads.
    #[test]
    fn invalid_utf8_refused_anywhere() {
        let e = Template::parse(b"{\"metadata\":\n {\"x\":\"ab\xff\"}}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid UTF-8 at line 2 column 10"), "{e}");
    }

    /// Go keeps the last of a repeated key; serde's derive refuses the template (README's
    /// differences, `json-reader`).
    #[test]
    fn repeated_key_refused() {
        assert!(Template::parse(br#"{"name":"a","name":"b"}"#).is_err());
        // Unread fields may repeat: they are skipped, not checked.
        assert!(Template::parse(br#"{"metadata":{},"metadata":{}}"#).is_ok());
    }
}
