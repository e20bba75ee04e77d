//! The command line: which subcommand, its flags, and the user command after `--`.
//!
//! It parses what upstream's cobra root accepts (SPEC section 1): `--loglevel` and
//! `--log-format` in any case, `--gloglevel N`, and client-go's kubectl flags
//! (`RecommendedConfigOverrideFlags` plus `--kubeconfig`), which the emissary accepts and
//! ignores so every argv the controller writes parses; flags may also stand before the
//! subcommand, as cobra allows. A flag nobody knows is a usage error (exit 64), as cobra makes
//! it: the executor image must match the controller, and an unknown flag may carry a change of
//! protocol. Subcommands that are not ours are not parsed at all: they go to upstream's binary
//! with the very same argv.

use std::ffi::OsString;

use lexopt::prelude::*;

use crate::sys::error::{Error, Result};
use crate::sys::log::Level;

pub enum Command {
    /// `emissary [flags] -- CMD ARGS...`
    Emissary(Logging, Vec<OsString>),
    /// `artifact-plugin-sidecar [flags] -- CMD ARGS...`
    PluginSidecar(Logging, Vec<OsString>),
    /// `kill SIGNAL PID`
    Kill(String, String),
    /// `init [flags]`: handed to upstream when it is found, its flags unparsed; otherwise the
    /// stand-alone init, with its flags parsed here (`None`: help asked for; `Err` when they
    /// do not parse).
    Init(Result<Option<Logging>>),
    /// `version [--short]`
    Version { short: bool },
    /// `-h`, `--help`, `help ...` or no arguments: usage on stdout, exit 0.
    Help,
    /// Any other subcommand: handed to the upstream binary with the same argv.
    Delegate,
}

#[derive(Clone, Copy)]
pub struct Logging {
    pub level: Level,
    pub json: bool,
}

impl Default for Logging {
    fn default() -> Logging {
        Logging {
            level: Level::Info,
            json: false,
        }
    }
}

/// client-go's kubectl flags that take a value (`--kubeconfig X` or `--kubeconfig=X`): what
/// `clientcmd.RecommendedConfigOverrideFlags("")` binds, plus `--kubeconfig`, as upstream's
/// `util/kube/cli` registers them (`-n` is the one shorthand; `--server` has none).
const IGNORED_VALUE_FLAGS: &[&str] = &[
    "kubeconfig",
    "client-certificate",
    "client-key",
    "token",
    "as",
    "as-uid",
    "as-group",
    "username",
    "password",
    "server",
    "tls-server-name",
    "certificate-authority",
    "proxy-url",
    "cluster",
    "user",
    "namespace",
    "context",
    "request-timeout",
];

/// client-go's boolean kubectl flags (`--flag`, or `--flag=true|false|1|0|t|f...`).
const IGNORED_BOOL_FLAGS: &[&str] = &["insecure-skip-tls-verify", "disable-compression"];

pub const USAGE: &str = "\
argoexec is the executor sidecar to workflow containers

Usage:
  argoexec emissary [flags] -- CMD [ARGS...]                 wrap a user command
  argoexec artifact-plugin-sidecar [flags] -- CMD [ARGS...]  run an artifact plugin as a sidecar
  argoexec kill SIGNAL PID                                   send SIGNAL to PID
  argoexec init [flags]                                      set up the shared folder
  argoexec version [--short]                                 print the version

Every other subcommand (wait, resource, data, agent, artifact, artifact-plugin-init,
supervisor, completion, ...), and init when upstream's executor is found, is run by upstream's
executor with the very same arguments: $ARGOEXEC_UPSTREAM, else argoexec-upstream in this
executable's folder.

Flags:
      --loglevel string     debug|info|warn|error, any case (default \"info\")
      --log-format string   text|json, any case (default \"text\")
      --gloglevel int       accepted and ignored
  -h, --help                this help
kubectl flags (--kubeconfig, --server, --proxy-url, -n, ...) are accepted and ignored.
";

fn usage_error(msg: impl Into<String>) -> Error {
    Error::new(msg)
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>) -> Result<Command> {
    let mut p = lexopt::Parser::from_args(args);
    let mut logging = Logging::default();
    // Root flags may come before the subcommand, as cobra's persistent flags can.
    let sub = match next_flags(&mut p, &mut logging)? {
        Stop::Help => return Ok(Command::Help),
        Stop::End => return Ok(Command::Help),
        Stop::Value(v) => v.to_string_lossy().into_owned(),
    };
    match sub.as_str() {
        "emissary" | "artifact-plugin-sidecar" => {
            let rest = match next_flags(&mut p, &mut logging)? {
                Stop::Help => return Ok(Command::Help),
                Stop::End => Vec::new(),
                Stop::Value(first) => {
                    let mut rest = vec![first];
                    rest.extend(p.raw_args().map_err(|e| usage_error(e.to_string()))?);
                    rest
                }
            };
            if rest.is_empty() {
                return Err(usage_error(format!("{sub}: no command given after --")));
            }
            Ok(if sub == "emissary" {
                Command::Emissary(logging, rest)
            } else {
                Command::PluginSidecar(logging, rest)
            })
        }
        "init" => Ok(match next_flags(&mut p, &mut logging) {
            Ok(Stop::Help) => Command::Init(Ok(None)),
            Ok(Stop::End) => Command::Init(Ok(Some(logging))),
            Ok(Stop::Value(v)) => Command::Init(Err(usage_error(format!(
                "init: unexpected argument \"{}\"",
                v.to_string_lossy()
            )))),
            Err(e) => Command::Init(Err(e)),
        }),
        "kill" => {
            let mut rest = Vec::new();
            loop {
                match next_flags(&mut p, &mut logging)? {
                    Stop::Help => return Ok(Command::Help),
                    Stop::End => break,
                    Stop::Value(v) => rest.push(v.to_string_lossy().into_owned()),
                }
            }
            match <[String; 2]>::try_from(rest) {
                Ok([sig, pid]) => Ok(Command::Kill(sig, pid)),
                Err(_) => Err(usage_error("kill: usage: argoexec kill SIGNAL PID")),
            }
        }
        "version" => {
            let mut short = false;
            // Extra arguments are ignored, as upstream's `version` ignores them.
            loop {
                match p.next().map_err(|e| usage_error(e.to_string()))? {
                    None => break,
                    Some(Long("short")) => short = bool_value(&mut p, "short")?,
                    Some(Value(_)) => {}
                    Some(arg) => {
                        let arg = Flag::from(arg);
                        if root_flag(&mut p, arg, &mut logging)? == Some(true) {
                            return Ok(Command::Help);
                        }
                    }
                }
            }
            Ok(Command::Version { short })
        }
        "help" => Ok(Command::Help),
        _ => Ok(Command::Delegate),
    }
}

/// Where a run of flags stopped.
enum Stop {
    /// `-h` or `--help`.
    Help,
    /// The first positional argument (after `--`, whatever it looks like).
    Value(OsString),
    /// No arguments left.
    End,
}

/// Takes root flags until the first positional argument.
fn next_flags(p: &mut lexopt::Parser, logging: &mut Logging) -> Result<Stop> {
    loop {
        match p.next().map_err(|e| usage_error(e.to_string()))? {
            None => return Ok(Stop::End),
            Some(Value(v)) => return Ok(Stop::Value(v)),
            Some(arg) => {
                let arg = Flag::from(arg);
                if root_flag(p, arg, logging)? == Some(true) {
                    return Ok(Stop::Help);
                }
            }
        }
    }
}

/// A flag as lexopt gave it, owned, so the parser can be asked for its value.
enum Flag {
    Long(String),
    Short(char),
    Value(OsString),
}

impl From<lexopt::Arg<'_>> for Flag {
    fn from(a: lexopt::Arg<'_>) -> Flag {
        match a {
            Long(n) => Flag::Long(n.to_string()),
            Short(c) => Flag::Short(c),
            Value(v) => Flag::Value(v),
        }
    }
}

/// Takes one of the root's flags and its value: `Some(true)` for a help request, `Some(false)`
/// for any other known flag; an unknown flag is a usage error.
fn root_flag(p: &mut lexopt::Parser, arg: Flag, logging: &mut Logging) -> Result<Option<bool>> {
    let name = match arg {
        Flag::Short('h') => return Ok(Some(true)),
        Flag::Short('n') => {
            string_value(p, "namespace")?;
            return Ok(Some(false));
        }
        Flag::Short(c) => {
            return Err(usage_error(format!(
                "unknown shorthand flag: '{c}' in -{c}"
            )))
        }
        Flag::Value(v) => {
            return Err(usage_error(format!(
                "unexpected argument \"{}\"",
                v.to_string_lossy()
            )))
        }
        Flag::Long(n) => n,
    };
    match name.as_str() {
        "help" => return Ok(Some(bool_value(p, "help")?)),
        "loglevel" => {
            let v = string_value(p, "loglevel")?;
            logging.level =
                Level::parse(&v).ok_or_else(|| usage_error(format!("invalid log level: {v}")))?;
        }
        "log-format" => {
            let v = string_value(p, "log-format")?;
            logging.json = match v.to_ascii_lowercase().as_str() {
                "text" => false,
                "json" => true,
                _ => return Err(usage_error(format!("invalid log type: {v}"))),
            }
        }
        "gloglevel" => {
            let v = string_value(p, "gloglevel")?;
            if !is_go_int(&v) {
                return Err(usage_error(format!(
                    "invalid argument \"{v}\" for \"--gloglevel\" flag: not an integer"
                )));
            }
        }
        n if IGNORED_VALUE_FLAGS.contains(&n) => {
            string_value(p, n)?;
        }
        n if IGNORED_BOOL_FLAGS.contains(&n) => {
            bool_value(p, n)?;
        }
        n => return Err(usage_error(format!("unknown flag: --{n}"))),
    }
    Ok(Some(false))
}

/// A flag's value as UTF-8 text.
fn string_value(p: &mut lexopt::Parser, name: &str) -> Result<String> {
    let v = p
        .value()
        .map_err(|_| usage_error(format!("flag needs an argument: --{name}")))?;
    v.into_string().map_err(|v| {
        usage_error(format!(
            "invalid UTF-8 in the value of --{name}: \"{}\"",
            v.to_string_lossy()
        ))
    })
}

/// A boolean flag: bare is true; `--flag=V` takes Go's `strconv.ParseBool` spellings.
fn bool_value(p: &mut lexopt::Parser, name: &str) -> Result<bool> {
    let Some(v) = p.optional_value() else {
        return Ok(true);
    };
    match v.to_string_lossy().as_ref() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(usage_error(format!(
            "invalid argument \"{other}\" for \"--{name}\" flag: not a boolean"
        ))),
    }
}

/// An integer as Go's `strconv.ParseInt(s, 0, 64)` reads it: a sign, then decimal, or
/// `0x`/`0o`/`0b`/`0` prefixed digits (underscores between digits allowed after a prefix).
fn is_go_int(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = s.to_ascii_lowercase();
    let (digits, radix) = if let Some(d) = lower.strip_prefix("0x") {
        (d.replace('_', ""), 16)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (d.replace('_', ""), 8)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (d.replace('_', ""), 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (lower[1..].replace('_', ""), 8)
    } else {
        (lower, 10)
    };
    !digits.is_empty()
        && i64::from_str_radix(&digits, radix).is_ok()
        && !digits.starts_with(['+', '-'])
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
            "DEBUG",
            "--log-format",
            "JSON",
            "--gloglevel",
            "0",
            "--kubeconfig",
            "/k",
            "--proxy-url=http://p",
            "--disable-compression",
            "--insecure-skip-tls-verify=false",
            "-n",
            "ns",
            "--as-group",
            "a",
            "--as-group=b",
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
    fn root_flags_before_the_subcommand() {
        match parse(args(&["--log-format", "Json", "emissary", "--", "true"])).unwrap() {
            Command::Emissary(l, rest) => {
                assert!(l.json);
                assert_eq!(rest, args(&["true"]));
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
        match parse(args(&["artifact-plugin-sidecar", "--", "plugin", "-h"])).unwrap() {
            Command::PluginSidecar(_, rest) => assert_eq!(rest, args(&["plugin", "-h"])),
            _ => panic!(),
        }
    }

    #[test]
    fn help_and_version() {
        for a in [
            &["-h"][..],
            &["--help"],
            &[],
            &["help"],
            &["help", "emissary"],
            &["emissary", "-h"],
            &["emissary", "--help", "--", "true"],
            &["kill", "-h"],
            &["version", "-h"],
            &["artifact-plugin-sidecar", "-h"],
        ] {
            assert!(matches!(parse(args(a)).unwrap(), Command::Help), "{a:?}");
        }
        assert!(matches!(
            parse(args(&["version", "--short"])).unwrap(),
            Command::Version { short: true }
        ));
        assert!(matches!(
            parse(args(&["version", "extra"])).unwrap(),
            Command::Version { short: false }
        ));
    }

    #[test]
    fn errors() {
        assert!(parse(args(&["emissary", "--"])).is_err());
        assert!(parse(args(&["emissary"])).is_err());
        assert!(parse(args(&["emissary", "--bogus", "--", "true"])).is_err());
        assert!(parse(args(&["emissary", "-s", "x", "--", "true"])).is_err());
        assert!(parse(args(&["emissary", "--log-format", "xml", "--", "true"])).is_err());
        assert!(parse(args(&["emissary", "--gloglevel", "x", "--", "true"])).is_err());
        assert!(parse(args(&[
            "emissary",
            "--disable-compression=maybe",
            "--",
            "true"
        ]))
        .is_err());
        assert!(parse(args(&["--bogus", "wait"])).is_err());
        assert!(parse(args(&["kill", "15"])).is_err());
        assert!(parse(args(&["kill", "-9", "1"])).is_err());
        assert!(matches!(
            parse(args(&["init", "--bogus"])).unwrap(),
            Command::Init(Err(_))
        ));
        assert!(matches!(
            parse(args(&["init", "--proxy-url", "x"])).unwrap(),
            Command::Init(Ok(Some(_)))
        ));
        assert!(matches!(
            parse(args(&["init", "-h"])).unwrap(),
            Command::Init(Ok(None))
        ));
        assert!(matches!(
            parse(args(&["wait", "--bogus"])).unwrap(),
            Command::Delegate
        ));
        assert!(matches!(
            parse(args(&["artifact-plugin-init", "--plugin-name", "x"])).unwrap(),
            Command::Delegate
        ));
        assert!(matches!(
            parse(args(&["kill", "15", "1"])).unwrap(),
            Command::Kill(..)
        ));
    }

    #[test]
    fn go_ints() {
        for (s, ok) in [
            ("0", true),
            ("-1", true),
            ("+5", true),
            ("0x10", true),
            ("017", true),
            ("0b1_0", true),
            ("x", false),
            ("", false),
            ("1.5", false),
            ("--1", false),
        ] {
            assert_eq!(is_go_int(s), ok, "{s}");
        }
    }
}
