//! Decoding the firmware's defmt frames (rzCOBS over semihosting stdout) with the ELF's table.

use std::fmt;

use anyhow::{anyhow, Context, Result};
use defmt_decoder::{DecodeError, Table};

/// One decoded log message.
pub struct LogLine {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`, or `None` for `defmt::println!`.
    pub level: Option<String>,
    /// The formatted message.
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.level {
            Some(level) => write!(f, "{level:<5} {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Decodes everything the firmware wrote to stdout. Returns the messages and a list of problems
/// (malformed frames, a truncated last frame).
pub fn decode(elf: &[u8], stream: &[u8]) -> Result<(Vec<LogLine>, Vec<String>)> {
    let table = Table::parse(elf)
        .context("cannot read the defmt table of the ELF")?
        .ok_or_else(|| anyhow!("the ELF has no .defmt section (is it linked with -Tdefmt.x?)"))?;
    let mut decoder = table.new_stream_decoder();
    decoder.received(stream);
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    loop {
        match decoder.decode() {
            Ok(frame) => lines.push(LogLine {
                level: frame.level().map(|l| l.as_str().to_uppercase()),
                message: frame.display_message().to_string(),
            }),
            Err(DecodeError::UnexpectedEof) => break,
            Err(DecodeError::Malformed) => problems.push("malformed frame skipped".to_owned()),
        }
    }
    if stream.last().is_some_and(|&b| b != 0) {
        problems.push("output ends inside a frame (truncated)".to_owned());
    }
    Ok((lines, problems))
}
