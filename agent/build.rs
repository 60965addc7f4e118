//! Records the git commit, target triple and profile for `skerry version`, and
//! compiles the vendored seccomp profile into syscall tables (`build_seccomp.rs`).
use std::path::PathBuf;
use std::process::Command;

#[path = "build_seccomp.rs"]
mod seccomp;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    println!(
        "cargo:rustc-env=SKERRY_GIT_COMMIT={commit}{}",
        if dirty { "-dirty" } else { "" }
    );
    // The commit's time: the floor of the agent's clock for certificate checks.
    let build_unix = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| {
            Command::new("git")
                .args(["log", "-1", "--format=%ct"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
        })
        .map(|s| s.trim().to_string())
        .filter(|s| s.parse::<u64>().is_ok())
        .unwrap_or_else(|| "0".to_string());
    println!("cargo:rustc-env=SKERRY_BUILD_UNIX={build_unix}");
    println!(
        "cargo:rustc-env=SKERRY_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=SKERRY_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );
    let profile = "src/runtime/seccomp/default.json";
    let json = std::fs::read_to_string(profile).expect("reading the seccomp profile");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    seccomp::generate(&json, &out.join("seccomp_profile.rs"));
    println!("cargo:rerun-if-changed={profile}");
    println!("cargo:rerun-if-changed=build_seccomp.rs");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/index");
}
