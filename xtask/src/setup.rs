//! What a fresh machine lacks, added before anything is built: the Rust targets of the boards
//! a command uses (and, for `test`, rustfmt and clippy), and QEMU (`qemu::ensure_installed`).

use anyhow::Result;
use microdnn_targets::{rustup, Target};

/// Adds the Rust targets of `targets` that the pinned toolchain lacks, saying so.
pub fn rust_targets<'a>(targets: impl IntoIterator<Item = &'a Target>) -> Result<()> {
    let mut triples: Vec<&str> = targets.into_iter().map(|t| t.triple).collect();
    triples.sort_unstable();
    triples.dedup();
    rustup::ensure_targets(&triples).map_err(anyhow::Error::msg)
}

/// Adds the Rust targets of every board, rustfmt and clippy (`cargo xtask test`).
pub fn everything() -> Result<()> {
    rustup::ensure_components(&["rustfmt", "clippy"]).map_err(anyhow::Error::msg)?;
    rustup::ensure_targets(&rustup::all_triples()).map_err(anyhow::Error::msg)
}
