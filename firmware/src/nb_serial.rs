//! Any embedded-hal serial port (`embedded_hal_nb::serial::{Read, Write}`, what HALs such as
//! `stm32f4xx-hal` implement) as an `embedded_io::{Read, Write}` port for [`crate::server`].

use embedded_hal_nb::nb;
use embedded_hal_nb::serial;

use crate::serial::Overrun;

/// A HAL serial port, adapted.
pub struct NbSerial<T>(pub T);

impl<T: serial::ErrorType> embedded_io::ErrorType for NbSerial<T> {
    /// Every HAL receive error (overrun, framing, noise) means bytes were lost.
    type Error = Overrun;
}

impl<T: serial::Read<u8>> embedded_io::Read for NbSerial<T> {
    /// Blocks until one byte has arrived, then returns it with any that are already waiting.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Overrun> {
        if buf.is_empty() {
            return Ok(0);
        }
        buf[0] = nb::block!(self.0.read()).map_err(|_| Overrun)?;
        let mut n = 1;
        while n < buf.len() {
            match self.0.read() {
                Ok(b) => {
                    buf[n] = b;
                    n += 1;
                }
                Err(nb::Error::WouldBlock) => break,
                Err(nb::Error::Other(_)) => return Err(Overrun),
            }
        }
        Ok(n)
    }
}

impl<T: serial::Write<u8>> embedded_io::Write for NbSerial<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Overrun> {
        for &b in buf {
            nb::block!(self.0.write(b)).map_err(|_| Overrun)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Overrun> {
        nb::block!(self.0.flush()).map_err(|_| Overrun)
    }
}
