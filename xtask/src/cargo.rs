//! Paths of the repository and the cargo invocations xtask makes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Target triple of the firmware (Cortex-M4F with hardware FPU).
pub const THUMB_TARGET: &str = "thumbv7em-none-eabihf";

/// The repository root (the host workspace).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The firmware crate, a cargo workspace of its own.
pub fn firmware_dir() -> PathBuf {
    root().join("firmware")
}

/// The firmware's own target directory (never the host's `CARGO_TARGET_DIR`).
pub fn firmware_target_dir() -> PathBuf {
    firmware_dir().join("target")
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

/// `cargo` run from the firmware folder, so cargo reads `firmware/.cargo/config.toml` (target,
/// runner, link scripts). Flags set for host builds must not leak into it: `RUSTFLAGS` would
/// replace the config's link arguments.
pub fn cargo_in_firmware() -> Command {
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(firmware_dir())
        .env("CARGO_TARGET_DIR", firmware_target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    cmd
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

/// Builds one firmware binary in release mode and returns the path of its ELF.
pub fn build_firmware(bin: &str) -> Result<PathBuf> {
    let mut cmd = cargo_in_firmware();
    cmd.args(["build", "--release", "--bin", bin]);
    run_status(&mut cmd)?;
    let elf = firmware_elf(bin);
    if !elf.is_file() {
        bail!("built the firmware but found no ELF at {}", elf.display());
    }
    Ok(elf)
}

/// Where the release ELF of a firmware binary lands.
pub fn firmware_elf(bin: &str) -> PathBuf {
    firmware_target_dir()
        .join(THUMB_TARGET)
        .join("release")
        .join(bin)
}
