//! Records the target triple and the git commit (when known) for `argoexec version`.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=ARGOEXEC_TARGET={target}");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=ARGOEXEC_COMMIT={commit}");
    // The whole `argoexec version` line, so the binary prints it without building it.
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let mut line = format!("argoexec {version} {target}");
    if !commit.is_empty() {
        line.push_str(" commit ");
        line.push_str(&commit);
    }
    println!("cargo:rustc-env=ARGOEXEC_VERSION_LINE={line}");
    // Rebuild when HEAD moves; git says where HEAD lives (a worktree's `.git` is a file).
    for name in ["HEAD", "refs"] {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", name]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
