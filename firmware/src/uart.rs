//! The CMSDK APB UART of the MPS2 boards (QEMU `mps2-an386`), behind the `embedded-io` traits.
//!
//! QEMU connects UART0 to the host with `-serial` (`stdio`, `tcp:...`, `unix:...`, `pipe:...`).
//! The protocol code ([`crate::server`]) only sees `embedded_io::Read + Write`, so a real board's
//! UART driver (from its HAL) takes this one's place unchanged.
//!
//! Registers (ARM CMSDK technical reference, "APB UART"):
//!
//! ```text
//! 0x000 DATA      read: received byte, write: byte to send
//! 0x004 STATE     bit 0 TX buffer full, bit 1 RX buffer full, bit 2 TX overrun, bit 3 RX overrun
//! 0x008 CTRL      bit 0 TX enable, bit 1 RX enable
//! 0x010 BAUDDIV   clock divider (>= 16)
//! ```

use core::convert::Infallible;

/// Base address of UART0 on the MPS2 AN385/AN386 boards.
pub const UART0_BASE: usize = 0x4000_4000;

const DATA: usize = 0x000;
const STATE: usize = 0x004;
const CTRL: usize = 0x008;
const BAUDDIV: usize = 0x010;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const STATE_OVERRUNS: u32 = 0b1100;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;

/// System clock of the MPS2 FPGA images (25 MHz).
pub const SYSTEM_CLOCK_HZ: u32 = 25_000_000;

/// A CMSDK APB UART, polled (no interrupts).
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Takes UART0 and enables it at `baud` (QEMU ignores the rate; real silicon does not).
    ///
    /// Only one value may drive a UART: create it once, at start-up.
    pub fn uart0(baud: u32) -> Self {
        let u = CmsdkUart { base: UART0_BASE };
        u.write_reg(BAUDDIV, (SYSTEM_CLOCK_HZ / baud.max(1)).max(16));
        u.write_reg(CTRL, CTRL_TX_EN | CTRL_RX_EN);
        u
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: `base + offset` is one of the documented, 4-byte-aligned registers of the
        // UART at UART0_BASE on this board (mapped for the program's whole life); volatile
        // reads of device registers have no other effect on Rust-visible memory.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`; writing these registers only affects the UART.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// A received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.read_reg(STATE) & STATE_RX_FULL != 0 {
            Some(self.read_reg(DATA) as u8)
        } else {
            None
        }
    }

    /// Sends one byte, waiting while the transmit buffer is full.
    pub fn write_byte(&mut self, b: u8) {
        while self.read_reg(STATE) & STATE_TX_FULL != 0 {}
        self.write_reg(DATA, b as u32);
    }

    /// Clears overrun flags (write-one-to-clear); returns whether there were any.
    pub fn clear_overruns(&mut self) -> bool {
        let s = self.read_reg(STATE) & STATE_OVERRUNS;
        if s != 0 {
            self.write_reg(STATE, s);
        }
        s != 0
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = Infallible;
}

impl embedded_io::Read for CmsdkUart {
    /// Blocks until at least one byte has arrived, then returns what is available.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let first = loop {
            if let Some(b) = self.try_read() {
                break b;
            }
        };
        buf[0] = first;
        let mut n = 1;
        while n < buf.len() {
            match self.try_read() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}

impl embedded_io::Write for CmsdkUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            self.write_byte(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
