//! Detects, from the target triple and the `-C target-cpu=` / `-C target-feature=` flags of the
//! build, which of the core's audited assembly kernels (`src/asm/`) the target can run, and sets:
//!
//! - `cfg(microdnn_helium)`: a Cortex-M55/M85 (Helium, the M-profile Vector Extension with
//!   floating point): the f32 kernel's Helium inner loop (`asm::helium`);
//! - `cfg(microdnn_dsp)`: a core with the DSP extension (`SMLAD`, `SXTB16`): every
//!   `thumbv7em` target (Cortex-M4/M7, where the extension is part of the architecture), and
//!   `thumbv8m.main` when the flags name a CPU that has it (`target-cpu=cortex-m33`, `-m35p`,
//!   `-m55`, `-m85`) or enable it (`target-feature=+dsp`): the int8 kernel's `SMLAD` loop
//!   (`asm::dsp_int8`). A `thumbv8m.main` build without such a flag may run on a Cortex-M33
//!   built without the extension, so it keeps the portable kernel;
//! - `cfg(microdnn_vfp)`: a hard-float core without Helium (every `*-eabihf` triple: Cortex-M4F,
//!   M7, M33 with its FPU): the f32 kernel's `VLDM`/`VMLA` inner loop (`asm::vfp`). Not with
//!   `target-feature=+soft-float` (no FPU registers).
//!
//! Stable Rust sets no `target_feature` for either (`cfg(target_feature = "dsp")` is never true
//! on stable for `thumbv7em`), so the flags are read here, as the anchors' lesson advises.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(microdnn_helium)");
    println!("cargo:rustc-check-cfg=cfg(microdnn_dsp)");
    println!("cargo:rustc-check-cfg=cfg(microdnn_vfp)");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-changed=build.rs");
    let arm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "arm");
    let triple = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    // `-C target-cpu=X` arrives as two words ("-C", "target-cpu=X") or one ("-Ctarget-cpu=X").
    let flags: Vec<&str> = flags
        .split('\x1f')
        .map(|f| f.trim_start_matches("-C"))
        .collect();
    let cpu = |names: &[&str]| {
        flags.iter().any(|f| {
            f.strip_prefix("target-cpu=")
                .is_some_and(|c| names.contains(&c))
        })
    };
    let feature = |name: &str| {
        flags.iter().any(|f| {
            f.strip_prefix("target-feature=")
                .is_some_and(|list| list.split(',').any(|x| x == name))
        })
    };
    let helium = cpu(&["cortex-m55", "cortex-m85"])
        || flags
            .iter()
            .any(|f| f.starts_with("target-feature=") && f.contains("+mve.fp"));
    if arm && helium {
        println!("cargo:rustc-cfg=microdnn_helium");
    }
    let vfp = triple.ends_with("eabihf") && !helium && !feature("+soft-float");
    if arm && vfp {
        println!("cargo:rustc-cfg=microdnn_vfp");
    }
    let dsp = (triple.starts_with("thumbv7em")
        || triple.starts_with("thumbv8m.main")
            && (cpu(&["cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"])
                || feature("+dsp")))
        && !feature("-dsp");
    if arm && dsp {
        println!("cargo:rustc-cfg=microdnn_dsp");
    }
}
