//! Flash and static RAM of a firmware ELF, from its section headers.

use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection};

/// Memory footprint of a firmware image.
#[derive(Debug, Default, Clone, Copy)]
pub struct Footprint {
    /// `.vector_table`
    pub vector_table: u64,
    /// `.text` (code)
    pub text: u64,
    /// `.rodata` (constants; the demo's weights live here)
    pub rodata: u64,
    /// `.data` (initialised statics: in RAM, with their initial values also stored in flash)
    pub data: u64,
    /// `.bss` (zeroed statics)
    pub bss: u64,
    /// `.uninit` (uninitialised statics)
    pub uninit: u64,
}

impl Footprint {
    /// Bytes of flash: vector table, code, constants and the initial values of `.data`.
    pub fn flash_bytes(&self) -> u64 {
        self.vector_table + self.text + self.rodata + self.data
    }

    /// Bytes of RAM taken by statics (`.data`, `.bss`, `.uninit`); the stack comes on top.
    pub fn static_ram_bytes(&self) -> u64 {
        self.data + self.bss + self.uninit
    }

    /// As JSON (sections and totals).
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "flash_bytes": self.flash_bytes(),
            "static_ram_bytes": self.static_ram_bytes(),
            "sections": {
                ".vector_table": self.vector_table,
                ".text": self.text,
                ".rodata": self.rodata,
                ".data": self.data,
                ".bss": self.bss,
                ".uninit": self.uninit,
            },
        })
    }
}

/// Reads the section sizes of an ELF.
pub fn footprint(elf: &Path) -> Result<Footprint> {
    let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*bytes)
        .with_context(|| format!("cannot parse {} as ELF", elf.display()))?;
    let mut fp = Footprint::default();
    for section in file.sections() {
        let size = section.size();
        match section.name().unwrap_or("") {
            ".vector_table" => fp.vector_table += size,
            ".text" => fp.text += size,
            ".rodata" => fp.rodata += size,
            ".data" => fp.data += size,
            ".bss" => fp.bss += size,
            ".uninit" => fp.uninit += size,
            _ => {}
        }
    }
    Ok(fp)
}

/// Bytes of the symbols of an ELF whose demangled name (without its hash) starts with one of
/// `prefixes`: for example the demo network's parameters, `microdnn_firmware::model::data::FC`.
pub fn symbol_bytes(elf: &Path, prefixes: &[&str]) -> Result<u64> {
    use object::ObjectSymbol;
    let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*bytes)
        .with_context(|| format!("cannot parse {} as ELF", elf.display()))?;
    Ok(file
        .symbols()
        .filter(|s| {
            let name = format!("{:#}", rustc_demangle::demangle(s.name().unwrap_or("")));
            prefixes.iter().any(|p| name.starts_with(p))
        })
        .map(|s| s.size())
        .sum())
}
