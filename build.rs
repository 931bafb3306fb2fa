//! Records the git commit the binary is built from, for the build-info metric.

use std::process::Command;

fn main() {
    let sha = std::env::var("ATCR_INDEXER_GIT_SHA")
        .ok()
        .filter(|sha| !sha.is_empty());
    let sha = sha.or_else(|| {
        let output = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=ATCR_INDEXER_GIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=ATCR_INDEXER_GIT_SHA");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
