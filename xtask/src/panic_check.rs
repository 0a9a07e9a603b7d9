//! No panic path in a firmware program: checked on the release ELFs.
//!
//! Every panic in Rust ends in the `#[panic_handler]` (`rust_begin_unwind`), reached through
//! `core::panicking::panic_fmt` and its callers (`panic`, `panic_bounds_check`,
//! `slice_index_fail`, `unwrap_failed`, `expect_failed`, defmt's `_defmt_panic`, ...). With fat
//! LTO the linker keeps a function only if something calls it, so a program that cannot panic
//! has none of them. [`find`] lists those symbols and, for each, the functions that call it (the
//! Thumb `BL`/`B.W` instructions whose target is the symbol), so a failure names the culprit.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// A panic-path function in an ELF and the functions that branch to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicSymbol {
    /// Demangled (legacy mangling) name.
    pub name: String,
    /// Functions with a `BL`/`B.W` to it.
    pub callers: BTreeSet<String>,
}

/// Whether a (mangled or plain) symbol name is part of the panic machinery.
pub fn is_panic_path(name: &str) -> bool {
    const MARKERS: [&str; 8] = [
        "panic",
        "begin_unwind",
        "unwrap_failed",
        "expect_failed",
        "index_fail",
        "len_fail",
        "mismatch_fail",
        "unreachable_display",
    ];
    let lower = name.to_ascii_lowercase();
    MARKERS.iter().any(|m| lower.contains(m))
}

/// A symbol name as people read it (`core::panicking::panic`), legacy or v0 mangling, without
/// the hash.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// The target of a 32-bit Thumb `BL` (T1) or `B.W` (T4) at `addr`, if `hw1, hw2` is one.
pub fn thumb_branch_target(addr: u64, hw1: u16, hw2: u16) -> Option<u64> {
    if hw1 & 0xF800 != 0xF000 {
        return None;
    }
    let is_bl = hw2 & 0xD000 == 0xD000;
    let is_bw = hw2 & 0xD000 == 0x9000;
    if !is_bl && !is_bw {
        return None;
    }
    let s = u32::from((hw1 >> 10) & 1);
    let imm10 = u32::from(hw1 & 0x3FF);
    let j1 = u32::from((hw2 >> 13) & 1);
    let j2 = u32::from((hw2 >> 11) & 1);
    let imm11 = u32::from(hw2 & 0x7FF);
    let i1 = !(j1 ^ s) & 1;
    let i2 = !(j2 ^ s) & 1;
    let imm = (s << 24) | (i1 << 23) | (i2 << 22) | (imm10 << 12) | (imm11 << 1);
    // Sign-extend from 25 bits.
    let offset = ((imm << 7) as i32 >> 7) as i64;
    Some((addr as i64 + 4 + offset) as u64)
}

/// The panic-path functions of an ELF, with their callers.
pub fn find(elf: &Path) -> Result<Vec<PanicSymbol>> {
    let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*bytes)
        .with_context(|| format!("cannot parse {} as ELF", elf.display()))?;
    // Functions by address (the Thumb bit cleared).
    let mut functions: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
        .filter_map(|s| Some((s.address() & !1, s.size(), demangle(s.name().ok()?))))
        .collect();
    functions.sort();
    let panics: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
        .filter_map(|s| {
            let name = s.name().ok()?;
            is_panic_path(name).then(|| (s.address() & !1, demangle(name)))
        })
        .collect();
    let mut found: Vec<PanicSymbol> = panics
        .iter()
        .map(|(_, name)| PanicSymbol {
            name: name.clone(),
            callers: BTreeSet::new(),
        })
        .collect();
    if found.is_empty() {
        return Ok(found);
    }
    let containing = |addr: u64| -> Option<&str> {
        let i = functions.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &functions[i];
        (addr < start + size.max(&1)).then_some(name.as_str())
    };
    for section in file.sections() {
        if section.kind() != object::SectionKind::Text {
            continue;
        }
        let data = section.data()?;
        let base = section.address();
        for (i, pair) in data.windows(4).enumerate().step_by(2) {
            let hw1 = u16::from_le_bytes([pair[0], pair[1]]);
            let hw2 = u16::from_le_bytes([pair[2], pair[3]]);
            let addr = base + i as u64;
            let Some(target) = thumb_branch_target(addr, hw1, hw2) else {
                continue;
            };
            if let Some(k) = panics.iter().position(|(a, _)| *a == target) {
                if let Some(caller) = containing(addr) {
                    found[k].callers.insert(caller.to_owned());
                }
            }
        }
    }
    Ok(found)
}

/// Fails, naming every panic-path function and its callers, unless no ELF has one.
pub fn check<'a>(elfs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    check_allowing(elfs, &[])
}

/// [`check`], tolerating panic paths entered only from functions whose names start with one of
/// `allowed` (said in a note): a HAL's code that the program's fixed configuration cannot make
/// panic but that the linker keeps.
pub fn check_allowing<'a>(
    elfs: impl IntoIterator<Item = &'a Path>,
    allowed: &[&str],
) -> Result<()> {
    let mut report = String::new();
    let mut notes = String::new();
    let mut checked = 0;
    for elf in elfs {
        checked += 1;
        let found = find(elf)?;
        if found.is_empty() {
            continue;
        }
        // Where the panic machinery is entered from (callers that are not part of it).
        let entries: BTreeSet<&str> = found
            .iter()
            .flat_map(|p| p.callers.iter().map(String::as_str))
            .filter(|c| !is_panic_path(c))
            .collect();
        let tolerated = !entries.is_empty()
            && entries
                .iter()
                .all(|c| allowed.iter().any(|a| c.starts_with(a)));
        let out = if tolerated { &mut notes } else { &mut report };
        out.push_str(&format!("\n  {}:", elf.display()));
        for p in found {
            let callers: Vec<&str> = p
                .callers
                .iter()
                .map(String::as_str)
                .filter(|c| !is_panic_path(c))
                .collect();
            out.push_str(&format!("\n    {}", p.name));
            if !callers.is_empty() {
                out.push_str(&format!(" (called from {})", callers.join(", ")));
            }
        }
    }
    if !report.is_empty() {
        bail!("panic paths linked into firmware programs:{report}");
    }
    if !notes.is_empty() {
        println!(
            "xtask: allowed panic paths (entered only from {}):{notes}",
            allowed.join(", ")
        );
    }
    println!("xtask: no other panic path in {checked} firmware ELFs");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_legacy_names() {
        assert_eq!(
            demangle("_ZN4core9panicking18panic_bounds_check17h0123456789abcdefE"),
            "core::panicking::panic_bounds_check"
        );
        assert_eq!(
            demangle("_RNvNtNtCs7ldSeZOOJos_4core5slice5index16slice_index_fail"),
            "core::slice::index::slice_index_fail"
        );
        assert_eq!(demangle("rust_begin_unwind"), "rust_begin_unwind");
    }

    #[test]
    fn recognises_the_panic_machinery() {
        for n in [
            "_ZN4core9panicking9panic_fmt17h0123456789abcdefE",
            "_RNvCs1234_7___rustc17rust_begin_unwind",
            "_defmt_panic",
            "_ZN4core6option13unwrap_failed17h0123456789abcdefE",
            "_ZN4core5slice5index16slice_index_fail17h0123456789abcdefE",
        ] {
            assert!(is_panic_path(n), "{n}");
        }
        for n in [
            "_ZN8microdnn6kernel5dense17h0123456789abcdefE",
            "main",
            "Reset",
        ] {
            assert!(!is_panic_path(n), "{n}");
        }
    }

    #[test]
    fn decodes_thumb_bl() {
        // From an eval ELF (llvm-objdump): `400: 02 f0 19 fd  bl 0x2e36`.
        assert_eq!(thumb_branch_target(0x400, 0xf002, 0xfd19), Some(0x2e36));
        // Backwards: `1950: fe f7 82 fd  bl 0x458` (imm = #-5372).
        assert_eq!(thumb_branch_target(0x1950, 0xf7fe, 0xfd82), Some(0x458));
        // A tail call: `bb8: 01 f0 0c b9  b.w 0x1dd4`.
        assert_eq!(thumb_branch_target(0xbb8, 0xf001, 0xb90c), Some(0x1dd4));
        // Not a branch (`bx lr`).
        assert_eq!(thumb_branch_target(0, 0x4770, 0x0000), None);
    }
}
