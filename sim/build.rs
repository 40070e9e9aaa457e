//! Records the git commit at build time (for the repro line and `report.json`). Missing git
//! or a missing repository leaves it unset; nothing fails.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PPPPP_SIM_GIT_COMMIT");
    let Ok(output) = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
    else {
        return;
    };
    if !output.status.success() {
        return;
    }
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    println!("cargo:rustc-env=PPPPP_SIM_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves (works for worktrees: ask git where its files are).
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        && out.status.success()
    {
        let git_dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/logs/HEAD");
    }
}
