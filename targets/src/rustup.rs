//! The Rust set-up the firmware needs, added when missing.
//!
//! `rust-toolchain.toml` pins the toolchain and lists the thumb targets and components, but
//! rustup adds those only when it installs the toolchain itself: on a machine where that Rust was
//! already installed without them, the first thumb build fails with "can't find crate for
//! `core`". [`ensure_targets`] and [`ensure_components`] ask rustup what the active toolchain
//! (the pinned one, run from the repository) has and add the rest, saying so.

use std::process::Command;

use crate::repo_root;

fn rustup(args: &[&str]) -> Result<String, String> {
    let out = Command::new("rustup")
        .args(args)
        .current_dir(repo_root())
        .output()
        .map_err(|e| format!("cannot run `rustup {}`: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`rustup {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The toolchain cargo uses in this repository (`rustup show active-toolchain`).
pub fn active_toolchain() -> Result<String, String> {
    let out = rustup(&["show", "active-toolchain"])?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| "`rustup show active-toolchain` printed nothing".to_owned())
}

/// Without rustup: the targets whose `core` library is missing from rustc's sysroot.
fn missing_without_rustup(triples: &[&str]) -> Vec<String> {
    let has_core = |triple: &str| -> bool {
        let Ok(out) = Command::new("rustc")
            .args(["--print", "target-libdir", "--target", triple])
            .output()
        else {
            return false;
        };
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        std::fs::read_dir(dir).is_ok_and(|mut entries| {
            entries
                .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
        })
    };
    triples
        .iter()
        .filter(|t| !has_core(t))
        .map(|t| (*t).to_owned())
        .collect()
}

/// Adds the Rust targets in `triples` that the active toolchain lacks.
pub fn ensure_targets(triples: &[&str]) -> Result<(), String> {
    let toolchain = match active_toolchain() {
        Ok(t) => t,
        Err(e) => {
            let missing = missing_without_rustup(triples);
            if missing.is_empty() {
                return Ok(());
            }
            return Err(format!(
                "the Rust targets {} are not installed and rustup is not available ({e}): \
                 install them for your toolchain",
                missing.join(", ")
            ));
        }
    };
    let installed = rustup(&["target", "list", "--installed", "--toolchain", &toolchain])?;
    let have: Vec<&str> = installed.lines().map(str::trim).collect();
    let mut missing: Vec<&str> = triples
        .iter()
        .copied()
        .filter(|t| !have.contains(t))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "setup: adding Rust target(s) {} to toolchain {toolchain}: rustup target add --toolchain {toolchain} {}",
        missing.join(", "),
        missing.join(" ")
    );
    let mut args = vec!["target", "add", "--toolchain", &toolchain];
    args.extend(&missing);
    let status = Command::new("rustup")
        .args(&args)
        .current_dir(repo_root())
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if !status.success() {
        return Err(format!("`rustup {}` failed ({status})", args.join(" ")));
    }
    Ok(())
}

/// Adds the rustup components (`rustfmt`, `clippy`, ...) that the active toolchain lacks.
pub fn ensure_components(components: &[&str]) -> Result<(), String> {
    let toolchain = match active_toolchain() {
        Ok(t) => t,
        // No rustup: whatever installed Rust is responsible for its components.
        Err(_) => return Ok(()),
    };
    let installed = rustup(&[
        "component",
        "list",
        "--installed",
        "--toolchain",
        &toolchain,
    ])?;
    // Installed components are listed with the host triple: `clippy-x86_64-unknown-linux-gnu`.
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| {
            !installed.lines().any(|l| {
                let l = l.trim();
                l == *c
                    || l.strip_prefix(c)
                        .is_some_and(|rest| rest.starts_with('-') && rest[1..].contains('-'))
            })
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "setup: adding Rust component(s) {} to toolchain {toolchain}: rustup component add --toolchain {toolchain} {}",
        missing.join(", "),
        missing.join(" ")
    );
    let mut args = vec!["component", "add", "--toolchain", &toolchain];
    args.extend(&missing);
    let status = Command::new("rustup")
        .args(&args)
        .current_dir(repo_root())
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if !status.success() {
        return Err(format!("`rustup {}` failed ({status})", args.join(" ")));
    }
    Ok(())
}

/// The Rust target triples of every board in [`crate::TARGETS`].
pub fn all_triples() -> Vec<&'static str> {
    let mut t: Vec<&str> = crate::TARGETS.iter().map(|t| t.triple).collect();
    t.sort_unstable();
    t.dedup();
    t
}
