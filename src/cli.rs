//! The command line: which subcommand, its flags, and the user command after `--`.
//!
//! Flags upstream accepts but the emissary has no use for (the kubectl client flags that
//! upstream's cobra root adds) are accepted and ignored, so every pod spec the controller writes
//! parses; a flag nobody knows is a usage error (exit 64).

use std::ffi::OsString;

use lexopt::prelude::*;

use crate::error::{Error, Result};
use crate::log::Level;

pub enum Command {
    /// `emissary [flags] -- CMD ARGS...`
    Emissary(Logging, Vec<OsString>),
    /// `kill SIGNAL PID`
    Kill(String, String),
    /// `init [flags]`
    Init(Logging),
    Version,
    Help,
    /// Any other subcommand: handed to the upstream binary with the same argv.
    Delegate,
}

#[derive(Clone, Copy)]
pub struct Logging {
    pub level: Level,
    pub json: bool,
}

/// kubectl client flags that take a value (`--kubeconfig X` or `--kubeconfig=X`).
const IGNORED_VALUE_FLAGS: &[&str] = &[
    "kubeconfig",
    "context",
    "cluster",
    "user",
    "namespace",
    "server",
    "token",
    "as",
    "as-group",
    "as-uid",
    "certificate-authority",
    "client-certificate",
    "client-key",
    "password",
    "username",
    "request-timeout",
    "tls-server-name",
    "cache-dir",
    "executor-type",
];

/// kubectl client flags that are booleans.
const IGNORED_BOOL_FLAGS: &[&str] = &[
    "insecure-skip-tls-verify",
    "disable-compression",
    "match-server-version",
];

pub const USAGE: &str = "\
usage: argoexec emissary [--loglevel L] [--log-format text|json] [--gloglevel N] -- CMD [ARGS...]
       argoexec kill SIGNAL PID
       argoexec init [--loglevel L] [--log-format text|json]
       argoexec version
Other subcommands (wait, resource, ...) go to the executor named in ARGOEXEC_UPSTREAM.
";

fn usage_error(msg: impl Into<String>) -> Error {
    Error::new(msg)
}

pub fn parse(args: Vec<OsString>) -> Result<Command> {
    let mut p = lexopt::Parser::from_args(args);
    let sub = match p.next().map_err(|e| usage_error(e.to_string()))? {
        Some(Value(v)) => v.to_string_lossy().into_owned(),
        Some(Long("help")) | Some(Short('h')) => return Ok(Command::Help),
        Some(Long("version")) => return Ok(Command::Version),
        Some(arg) => return Err(usage_error(arg.unexpected().to_string())),
        None => return Ok(Command::Help),
    };
    match sub.as_str() {
        "emissary" => {
            let (logging, rest) = parse_flags(&mut p, true)?;
            if rest.is_empty() {
                return Err(usage_error("emissary: no command given after --"));
            }
            Ok(Command::Emissary(logging, rest))
        }
        "init" => Ok(Command::Init(parse_flags(&mut p, false)?.0)),
        "kill" => {
            let rest: Vec<String> = p
                .raw_args()
                .map_err(|e| usage_error(e.to_string()))?
                .map(|a| a.to_string_lossy().into_owned())
                .filter(|a| a != "--")
                .collect();
            match <[String; 2]>::try_from(rest) {
                Ok([sig, pid]) => Ok(Command::Kill(sig, pid)),
                Err(_) => Err(usage_error("kill: usage: argoexec kill SIGNAL PID")),
            }
        }
        "version" => Ok(Command::Version),
        "help" => Ok(Command::Help),
        _ => Ok(Command::Delegate),
    }
}

/// Parses the shared flags; with `positional`, the first value and everything after it is the
/// user command, returned verbatim.
fn parse_flags(p: &mut lexopt::Parser, positional: bool) -> Result<(Logging, Vec<OsString>)> {
    let mut logging = Logging {
        level: Level::Info,
        json: false,
    };
    let mut rest = Vec::new();
    while let Some(arg) = p.next().map_err(|e| usage_error(e.to_string()))? {
        match arg {
            Long("loglevel") => {
                let v = string_value(p)?;
                logging.level = Level::parse(&v)
                    .ok_or_else(|| usage_error(format!("invalid --loglevel \"{v}\"")))?;
            }
            Long("log-format") => {
                logging.json = match string_value(p)?.as_str() {
                    "text" => false,
                    "json" => true,
                    other => {
                        return Err(usage_error(format!(
                            "invalid --log-format \"{other}\": want text or json"
                        )))
                    }
                }
            }
            Long("gloglevel") | Short('v') => {
                let v = string_value(p)?;
                v.parse::<i32>()
                    .map_err(|_| usage_error(format!("invalid --gloglevel \"{v}\"")))?;
            }
            Short('n') | Short('s') => {
                p.value().map_err(|e| usage_error(e.to_string()))?;
            }
            Long(name) if IGNORED_VALUE_FLAGS.contains(&name) => {
                p.value().map_err(|e| usage_error(e.to_string()))?;
            }
            Long(name) if IGNORED_BOOL_FLAGS.contains(&name) => {
                // `--flag=false` carries its value inline; take it if present.
                let _ = p.optional_value();
            }
            Value(v) if positional => {
                rest.push(v);
                rest.extend(p.raw_args().map_err(|e| usage_error(e.to_string()))?);
                break;
            }
            other => return Err(usage_error(other.unexpected().to_string())),
        }
    }
    Ok((logging, rest))
}

fn string_value(p: &mut lexopt::Parser) -> Result<String> {
    let v = p.value().map_err(|e| usage_error(e.to_string()))?;
    v.into_string().map_err(|v| {
        usage_error(format!(
            "invalid UTF-8 in flag value \"{}\"",
            v.to_string_lossy()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn emissary_with_upstream_flags() {
        let c = parse(args(&[
            "emissary",
            "--loglevel",
            "debug",
            "--log-format",
            "json",
            "--gloglevel",
            "0",
            "--kubeconfig",
            "/k",
            "--",
            "sh",
            "-c",
            "echo --loglevel",
        ]))
        .unwrap();
        match c {
            Command::Emissary(l, rest) => {
                assert!(l.json);
                assert!(l.level == Level::Debug);
                assert_eq!(rest, args(&["sh", "-c", "echo --loglevel"]));
            }
            _ => panic!("not emissary"),
        }
    }

    #[test]
    fn after_dashes_is_verbatim() {
        match parse(args(&["emissary", "--", "--", "-x"])).unwrap() {
            Command::Emissary(_, rest) => assert_eq!(rest, args(&["--", "-x"])),
            _ => panic!(),
        }
    }

    #[test]
    fn errors() {
        assert!(parse(args(&["emissary", "--"])).is_err());
        assert!(parse(args(&["emissary"])).is_err());
        assert!(parse(args(&["emissary", "--bogus", "--", "true"])).is_err());
        assert!(parse(args(&["emissary", "--log-format", "xml", "--", "true"])).is_err());
        assert!(parse(args(&["kill", "15"])).is_err());
        assert!(matches!(parse(args(&["wait"])).unwrap(), Command::Delegate));
        assert!(matches!(
            parse(args(&["kill", "15", "1"])).unwrap(),
            Command::Kill(..)
        ));
    }
}
