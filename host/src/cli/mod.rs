//! The commands of the `microdnn` binary that are not about devices (those are in
//! `../deploy.rs`): their flags (clap) and what they print. Everything else is the library's.

pub mod bench;
pub mod lab;
pub mod score;
pub mod train;
