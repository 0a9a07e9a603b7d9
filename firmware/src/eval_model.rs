//! The model compiled into the `eval` program.
//!
//! `build.rs` reads the model file named by `MICRODNN_MODEL` (or encodes the demo network when it
//! is unset), validates it, and generates a [`network!`](microdnn::network) type `Net` with the
//! file's layer widths, plus the file itself in flash ([`MODEL`], 16-byte aligned). At start-up
//! the program validates the bytes again and builds `Net::from_model`: weights are read in place.

use crate::model::Aligned;

include!(concat!(env!("OUT_DIR"), "/eval_model.rs"));
