//! The one way to build the firmware: `firmware/` (a cargo workspace of its own) for a target,
//! with a model compiled in or not.
//!
//! Every build of a target goes to its own target directory, `firmware/target/BUILD_ID/` (see
//! [`Target::build_id`]), so targets never rebuild each other's binaries; the host's
//! `CARGO_TARGET_DIR`, `RUSTFLAGS` and build target never leak into it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{repo_root, Target};

/// The firmware crate.
pub fn firmware_dir() -> PathBuf {
    repo_root().join("firmware")
}

/// Where a target's firmware is built.
pub fn target_dir(target: &Target) -> PathBuf {
    firmware_dir().join("target").join(target.build_id())
}

/// The release ELF of a firmware program for a target.
pub fn elf(target: &Target, bin: &str) -> PathBuf {
    target_dir(target)
        .join(target.triple)
        .join("release")
        .join(bin)
}

/// `cargo SUBCOMMAND --target TRIPLE [--features ...]` in `firmware/`, set up for `target`:
/// its target directory, its `rustc` flags, its board (`MICRODNN_BOARD`), no model
/// (`MICRODNN_MODEL` removed) and nothing inherited from a host build. Add the rest of the
/// arguments (`--release`, `--bin eval`, `-- -D warnings`).
pub fn cargo(target: &Target, subcommand: &str) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(firmware_dir())
        .arg(subcommand)
        .args(["--target", target.triple])
        .env("CARGO_TARGET_DIR", target_dir(target))
        .env("MICRODNN_BOARD", target.board)
        .env_remove("MICRODNN_MODEL")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if !target.rustflags.is_empty() {
        cmd.env("CARGO_ENCODED_RUSTFLAGS", target.rustflags.join("\x1f"));
    }
    if !target.features.is_empty() {
        cmd.args(["--features", &target.features.join(",")]);
    }
    cmd
}

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct Build<'a> {
    /// Programs (`src/bin/NAME.rs`); empty: all of them.
    pub bins: &'a [&'a str],
    /// The model file the `eval` program serves (`MICRODNN_MODEL`); `None`: the demo network.
    pub model: Option<&'a Path>,
    /// Pass `--quiet` to cargo.
    pub quiet: bool,
}

/// The cargo command of a [`Build`] (see [`build`]).
pub fn build_command(target: &Target, b: &Build<'_>) -> std::io::Result<Command> {
    let mut cmd = cargo(target, "build");
    cmd.arg("--release");
    if b.quiet {
        cmd.arg("--quiet");
    }
    if b.bins.is_empty() {
        cmd.arg("--bins");
    }
    for bin in b.bins {
        cmd.args(["--bin", bin]);
    }
    if let Some(model) = b.model {
        cmd.env("MICRODNN_MODEL", std::fs::canonicalize(model)?);
    }
    Ok(cmd)
}

/// Builds firmware programs for `target` in release mode; returns the ELF of each program
/// asked for (`bins`), in order.
pub fn build(target: &Target, b: &Build<'_>) -> Result<Vec<PathBuf>, String> {
    let mut cmd = build_command(target, b).map_err(|e| {
        format!(
            "model file {}: {e}",
            b.model
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        )
    })?;
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build the firmware: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the firmware for {} (firmware/, {}) failed ({status})",
            target.name,
            if b.bins.is_empty() {
                "all programs".to_owned()
            } else {
                b.bins.join(", ")
            }
        ));
    }
    let elfs: Vec<PathBuf> = b.bins.iter().map(|bin| elf(target, bin)).collect();
    match elfs.iter().find(|e| !e.is_file()) {
        Some(missing) => Err(format!(
            "built the firmware but found no ELF at {}",
            missing.display()
        )),
        None => Ok(elfs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find;

    #[test]
    fn builds_are_separated_and_flags_passed() {
        let m55 = find("cortex-m55").unwrap();
        let cmd = build_command(
            m55,
            &Build {
                bins: &["eval"],
                model: None,
                quiet: true,
            },
        )
        .unwrap();
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "build --target thumbv8m.main-none-eabihf --release --quiet --bin eval"
        );
        let env: std::collections::HashMap<_, _> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert_eq!(
            env["CARGO_ENCODED_RUSTFLAGS"].as_deref(),
            Some(
                "-C\x1ftarget-cpu=cortex-m55\x1f-C\x1fno-vectorize-loops\x1f-C\x1fno-vectorize-slp"
            )
        );
        assert_eq!(env["MICRODNN_BOARD"].as_deref(), Some("mps3-an547"));
        assert_eq!(env["RUSTFLAGS"], None);
        assert_eq!(env["MICRODNN_MODEL"], None);
        assert!(env["CARGO_TARGET_DIR"]
            .as_deref()
            .unwrap()
            .ends_with("firmware/target/mps3-an547-thumbv8m.main-none-eabihf-cortex-m55"));
        let stm = cargo(find("stm32f405").unwrap(), "clippy");
        let args: Vec<_> = stm
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "clippy --target thumbv7em-none-eabihf --features stm32f405"
        );
    }
}
