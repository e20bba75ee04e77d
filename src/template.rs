//! The workflow template, as far as the emissary reads it (SPEC section 3 step 4).
//!
//! Only the fields the emissary uses are declared; serde ignores the rest, so any template the
//! controller writes parses. `null` is accepted wherever Go's `encoding/json` accepts it.

use std::io::ErrorKind;
use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub inputs: Inputs,
    #[serde(default, deserialize_with = "nullable")]
    pub outputs: Outputs,
    #[serde(default)]
    pub container: Option<MountsOnly>,
    #[serde(default)]
    pub script: Option<Script>,
    #[serde(default)]
    pub container_set: Option<ContainerSet>,
    #[serde(default, deserialize_with = "nullable")]
    pub sidecars: Vec<Named>,
    #[serde(default)]
    pub archive_location: Option<ArchiveLocation>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Inputs {
    #[serde(default, deserialize_with = "nullable")]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Outputs {
    #[serde(default, deserialize_with = "nullable")]
    pub parameters: Vec<Parameter>,
    #[serde(default, deserialize_with = "nullable")]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    #[serde(default)]
    pub value_from: Option<ValueFrom>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ValueFrom {
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Artifact {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub archive: Option<ArchiveStrategy>,
}

/// `archive: {tar: {compressionLevel: N}}`, `{none: {}}` or `{zip: {}}`.
#[derive(Debug, Default, Deserialize)]
pub struct ArchiveStrategy {
    #[serde(default)]
    pub tar: Option<TarStrategy>,
    #[serde(default)]
    pub none: Option<serde_json::Value>,
    #[serde(default)]
    pub zip: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TarStrategy {
    #[serde(default)]
    pub compression_level: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountsOnly {
    #[serde(default, deserialize_with = "nullable")]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Script {
    #[serde(default, deserialize_with = "nullable")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    #[serde(default)]
    pub mount_path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSet {
    #[serde(default, deserialize_with = "nullable")]
    pub containers: Vec<ContainerNode>,
    #[serde(default, deserialize_with = "nullable")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub retry_strategy: Option<RetryStrategy>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContainerNode {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dependencies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RetryStrategy {
    /// An integer or a string (Kubernetes' IntOrString); parsed by `retry`.
    #[serde(default)]
    pub retries: Option<serde_json::Value>,
    #[serde(default)]
    pub duration: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Named {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveLocation {
    #[serde(default)]
    pub archive_logs: Option<bool>,
}

/// Treats JSON `null` as the type's default, as Go does.
fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Template {
    pub fn parse(data: &[u8]) -> Result<Template> {
        serde_json::from_slice(data)
            .map_err(|e| Error::new(format!("failed to unmarshal template: {e}")))
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
/// `offload_path`). The returned bytes are the raw JSON.
pub fn read(root: &Path, env_template: Option<&str>, offload_path: &Path) -> Result<Vec<u8>> {
    let file = root.join("template");
    match std::fs::read(&file) {
        Ok(data) => Ok(data),
        Err(e) if e.kind() == ErrorKind::NotFound => match env_template {
            Some("offloaded") => std::fs::read(offload_path).map_err(|e| {
                Error::io(
                    "failed to read template: reading",
                    offload_path.display(),
                    e,
                )
            }),
            Some(json) => Ok(json.as_bytes().to_vec()),
            None => Err(Error::new(format!(
                "failed to read template: neither {} nor ARGO_TEMPLATE is available",
                file.display()
            ))),
        },
        Err(e) => Err(Error::io("failed to read template", file.display(), e)),
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
}
