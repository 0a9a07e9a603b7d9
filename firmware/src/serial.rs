//! What the serial drivers share.

/// Received bytes were lost (the receiver overran): the only error of the polled UART drivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overrun;

impl embedded_io::Error for Overrun {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl core::fmt::Display for Overrun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("serial receiver overrun: bytes were lost")
    }
}

impl core::error::Error for Overrun {}
