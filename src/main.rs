//! argoexec: the emissary that runs as PID 1 in every user container of an Argo workflow pod.

#[allow(dead_code)]
mod archive;
mod config;
mod error;
mod fsx;
mod log;
#[allow(dead_code)]
mod outputs;
mod template;

fn main() {
    let _ = config::Config::from_env();
}
