//! Any byte stream fed to the link's frame decoder and `respond` produces exactly one
//! well-formed answer per frame and never panics (what the firmware's serial loop does with
//! whatever arrives).
//!
//! Run: `cargo xtask fuzz --seconds N link_decoder` (nightly and cargo-fuzz). The body is shared
//! with the test suite, which runs it over the committed corpus (`core/tests/corpus/`).
#![no_main]

#[path = "../../tests/fuzz_bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::link_decoder(data));
