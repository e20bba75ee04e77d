//! The workflow template, as far as the emissary reads it (SPEC section 3 step 4).
//!
//! Only the fields the emissary uses are read; every other field is ignored unchecked, so any
//! template the controller writes parses. A field of the wrong type is an error, as in Go's
//! `encoding/json`, and `null` counts as absent wherever Go accepts it. The JSON is parsed
//! into a `json::Value` and read by hand: one small reader instead of a derived one per struct
//! keeps the binary small.

use std::path::Path;

use crate::sys::error::{Error, Result};
use crate::sys::fsx;
use crate::sys::json::{self, Value};

#[derive(Debug, Default)]
pub struct Template {
    pub name: Option<String>,
    pub inputs: Inputs,
    pub outputs: Outputs,
    pub container: Option<MountsOnly>,
    pub script: Option<Script>,
    pub container_set: Option<ContainerSet>,
    pub sidecars: Vec<Named>,
    pub archive_location: Option<ArchiveLocation>,
}

#[derive(Debug, Default)]
pub struct Inputs {
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Default)]
pub struct Outputs {
    pub parameters: Vec<Parameter>,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Default)]
pub struct Parameter {
    pub value_from: Option<ValueFrom>,
}

#[derive(Debug, Default)]
pub struct ValueFrom {
    pub path: Option<String>,
}

#[derive(Debug, Default)]
pub struct Artifact {
    pub name: Option<String>,
    pub path: Option<String>,
    pub archive: Option<ArchiveStrategy>,
}

/// `archive: {tar: {compressionLevel: N}}`, `{none: {}}` or `{zip: {}}`.
#[derive(Debug, Default)]
pub struct ArchiveStrategy {
    pub tar: Option<TarStrategy>,
    pub none: bool,
    pub zip: bool,
}

#[derive(Debug, Default)]
pub struct TarStrategy {
    pub compression_level: Option<i64>,
}

#[derive(Debug, Default)]
pub struct MountsOnly {
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Default)]
pub struct Script {
    pub volume_mounts: Vec<VolumeMount>,
    pub source: Option<String>,
}

#[derive(Debug, Default)]
pub struct VolumeMount {
    pub mount_path: String,
}

#[derive(Debug, Default)]
pub struct ContainerSet {
    pub containers: Vec<ContainerNode>,
    pub volume_mounts: Vec<VolumeMount>,
    pub retry_strategy: Option<RetryStrategy>,
}

#[derive(Debug, Default)]
pub struct ContainerNode {
    pub name: String,
    pub dependencies: Vec<String>,
}

#[derive(Debug, Default)]
pub struct RetryStrategy {
    /// An integer or a string (Kubernetes' IntOrString); read by `retry`.
    pub retries: Option<Value>,
    pub duration: Option<String>,
}

#[derive(Debug, Default)]
pub struct Named {
    pub name: String,
}

#[derive(Debug, Default)]
pub struct ArchiveLocation {
    pub archive_logs: Option<bool>,
}

/// One JSON object being read, with the path to it for messages.
struct Obj<'a> {
    members: &'a [(String, Value)],
    at: &'a str,
}

type Res<T> = std::result::Result<T, String>;

fn wrong(at: &str, key: &str, want: &str) -> String {
    format!("{at}{key}: want {want}")
}

impl<'a> Obj<'a> {
    /// `v` as an object; `None` for null.
    fn of(v: &'a Value, at: &'a str) -> Res<Option<Obj<'a>>> {
        match v {
            Value::Null => Ok(None),
            Value::Object(members) => Ok(Some(Obj { members, at })),
            _ => Err(wrong(at, "", "an object")),
        }
    }

    /// The field `key` (the last if repeated, as in Go), absent when missing or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        json::member(self.members, key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Res<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong(self.at, key, "a string")),
        }
    }

    fn bool(&self, key: &str) -> Res<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong(self.at, key, "true or false")),
        }
    }

    fn int(&self, key: &str) -> Res<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| wrong(self.at, key, "an integer")),
        }
    }

    /// The object at `key`, read by `f`; `None` when absent.
    fn obj<T>(&self, key: &str, f: impl Fn(&Obj) -> Res<T>) -> Res<Option<T>> {
        let at = format!("{}{key}.", self.at);
        match self.get(key) {
            None => Ok(None),
            Some(v) => match Obj::of(v, &at)? {
                Some(o) => f(&o).map(Some),
                None => Ok(None),
            },
        }
    }

    /// The array at `key`, each element read by `f`; empty when absent.
    fn list<T>(&self, key: &str, f: impl Fn(&Value, &str) -> Res<T>) -> Res<Vec<T>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| f(v, &format!("{}{key}[{i}].", self.at)))
                .collect(),
            Some(_) => Err(wrong(self.at, key, "an array")),
        }
    }

    /// An array of objects at `key`; a null element reads as the default, as in Go.
    fn objects<T: Default>(&self, key: &str, f: impl Fn(&Obj) -> Res<T>) -> Res<Vec<T>> {
        self.list(key, |v, at| match Obj::of(v, at)? {
            Some(o) => f(&o),
            None => Ok(T::default()),
        })
    }

    fn strings(&self, key: &str) -> Res<Vec<String>> {
        self.list(key, |v, at| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            _ => Err(format!("{at} want a string")),
        })
    }
}

fn mounts(o: &Obj) -> Res<Vec<VolumeMount>> {
    o.objects("volumeMounts", |m| {
        Ok(VolumeMount {
            mount_path: m.str("mountPath")?.unwrap_or_default(),
        })
    })
}

fn artifact(a: &Obj) -> Res<Artifact> {
    Ok(Artifact {
        name: a.str("name")?,
        path: a.str("path")?,
        archive: a.obj("archive", |s| {
            Ok(ArchiveStrategy {
                tar: s.obj("tar", |t| {
                    Ok(TarStrategy {
                        compression_level: t.int("compressionLevel")?,
                    })
                })?,
                none: s.get("none").is_some(),
                zip: s.get("zip").is_some(),
            })
        })?,
    })
}

fn read_template(t: &Obj) -> Res<Template> {
    Ok(Template {
        name: t.str("name")?,
        inputs: t
            .obj("inputs", |i| {
                Ok(Inputs {
                    artifacts: i.objects("artifacts", artifact)?,
                })
            })?
            .unwrap_or_default(),
        outputs: t
            .obj("outputs", |o| {
                Ok(Outputs {
                    parameters: o.objects("parameters", |p| {
                        Ok(Parameter {
                            value_from: p.obj("valueFrom", |v| {
                                Ok(ValueFrom {
                                    path: v.str("path")?,
                                })
                            })?,
                        })
                    })?,
                    artifacts: o.objects("artifacts", artifact)?,
                })
            })?
            .unwrap_or_default(),
        container: t.obj("container", |c| {
            Ok(MountsOnly {
                volume_mounts: mounts(c)?,
            })
        })?,
        script: t.obj("script", |s| {
            Ok(Script {
                volume_mounts: mounts(s)?,
                source: s.str("source")?,
            })
        })?,
        container_set: t.obj("containerSet", |cs| {
            Ok(ContainerSet {
                containers: cs.objects("containers", |c| {
                    Ok(ContainerNode {
                        name: c.str("name")?.unwrap_or_default(),
                        dependencies: c.strings("dependencies")?,
                    })
                })?,
                volume_mounts: mounts(cs)?,
                retry_strategy: cs.obj("retryStrategy", |r| {
                    Ok(RetryStrategy {
                        retries: r.get("retries").cloned(),
                        duration: r.str("duration")?,
                    })
                })?,
            })
        })?,
        sidecars: t.objects("sidecars", |s| {
            Ok(Named {
                name: s.str("name")?.unwrap_or_default(),
            })
        })?,
        archive_location: t.obj("archiveLocation", |a| {
            Ok(ArchiveLocation {
                archive_logs: a.bool("archiveLogs")?,
            })
        })?,
    })
}

impl Template {
    pub fn parse(data: &[u8]) -> Result<Template> {
        let fail = |e: String| Error::new(format!("failed to unmarshal template: {e}"));
        let v = json::parse(data).map_err(fail)?;
        match Obj::of(&v, "").map_err(fail)? {
            Some(t) => read_template(&t).map_err(fail),
            // `null` unmarshals to the empty template in Go.
            None => Ok(Template::default()),
        }
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
