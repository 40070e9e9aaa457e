//! The crate targets of the workspace, from `cargo metadata`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// One crate target: `node (lib)`, `sim (test it)`.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub root: PathBuf,
}

/// Every target of every workspace member, in `cargo metadata`'s order.
pub fn targets(cargo: &Path, manifest_dir: &Path) -> Result<Vec<Target>, Error> {
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(manifest_dir)
        .output()
        .map_err(|e| Error::Metadata(e.to_string()))?;
    if !output.status.success() {
        return Err(Error::Metadata(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| Error::Metadata(e.to_string()))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let mut targets = Vec::new();
    for package in &packages {
        let package_name = package["name"].as_str().unwrap_or("?");
        for target in package["targets"].as_array().into_iter().flatten() {
            let (Some(name), Some(root)) = (target["name"].as_str(), target["src_path"].as_str())
            else {
                continue;
            };
            let kind = target["kind"][0].as_str().unwrap_or("?");
            let label = if kind == "lib" {
                format!("{package_name} (lib)")
            } else {
                format!("{package_name} ({kind} {name})")
            };
            targets.push(Target {
                label,
                root: PathBuf::from(root),
            });
        }
    }
    Ok(targets)
}
