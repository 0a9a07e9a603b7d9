//! Any bytes given to `ModelView::new_checked` get a typed error or a well-formed view whose
//! every accessor, `run` and typed `from_model` work without panicking.
//!
//! Run: `cargo xtask fuzz --seconds N model_view` (nightly and cargo-fuzz). The body is shared
//! with the test suite, which runs it over the committed corpus (`core/tests/corpus/`).
#![no_main]

#[path = "../../tests/fuzz_bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::model_view(data));
