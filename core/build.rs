//! Detects a Cortex-M core with Helium (M-profile Vector Extension with floating point) from
//! the `-C target-cpu=` / `-C target-feature=` flags of the build and sets `cfg(microdnn_helium)`,
//! which selects the kernel's Helium inner loop (`kernel::helium`). Stable Rust exposes no
//! `target_feature` for MVE, so the flags are read here, as the anchors' lesson on `dsp` advises.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(microdnn_helium)");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-changed=build.rs");
    let arm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "arm");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    // `-C target-cpu=X` arrives as two words ("-C", "target-cpu=X") or one ("-Ctarget-cpu=X").
    let helium = flags.iter().any(|f| {
        let f = f.trim_start_matches("-C");
        matches!(f, "target-cpu=cortex-m55" | "target-cpu=cortex-m85")
            || (f.starts_with("target-feature=") && f.contains("+mve.fp"))
    });
    if arm && helium {
        println!("cargo:rustc-cfg=microdnn_helium");
    }
}
