//! The commands of the `microdnn` binary: their flags (clap) and what they print. Everything
//! else is the library's.

pub mod bench;
pub mod deploy;
pub mod lab;
pub mod score;
pub mod train;
