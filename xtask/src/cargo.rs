//! Paths of the repository and the cargo invocations xtask makes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use microdnn_targets::{firmware, Target};

/// The repository root (the host workspace).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `cargo` run from the repository root.
pub fn cargo_in_root() -> Command {
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(root());
    cmd
}

/// `cargo SUBCOMMAND` in the firmware folder, set up for `target` (see
/// `microdnn_targets::firmware::cargo`).
pub fn cargo_in_firmware(target: &Target, subcommand: &str) -> Command {
    firmware::cargo(target, subcommand)
}

/// Runs a command with inherited stdio; an error unless it exits with success.
pub fn run_status(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// A command line as a user would type it (program and arguments, with the folder if not root).
pub fn describe(cmd: &Command) -> String {
    let mut s = Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    if let Some(dir) = cmd.get_current_dir() {
        if dir != root() {
            if let Ok(rel) = dir.strip_prefix(root()) {
                s = format!("(cd {} && {s})", rel.display());
            }
        }
    }
    s
}

/// Builds firmware programs for a target in release mode (no model: the `eval` program gets the
/// demo network) and returns their ELFs, in order.
pub fn build_firmware(target: &Target, bins: &[&str]) -> Result<Vec<PathBuf>> {
    println!(
        "xtask: building the firmware for {} ({}, board {}): {}",
        target.name,
        target.triple,
        target.board,
        bins.join(", ")
    );
    firmware::build(
        target,
        &firmware::Build {
            bins,
            model: None,
            quiet: false,
        },
    )
    .map_err(anyhow::Error::msg)
}
