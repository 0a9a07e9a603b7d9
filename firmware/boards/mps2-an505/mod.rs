//! ARM MPS2 AN505 (Cortex-M33, IoTKit): QEMU `mps2-an505`. The core boots in the secure state,
//! so code, data and peripherals are used through their secure aliases; the system clock is
//! 20 MHz; the host link is the CMSDK APB UART0 (secure alias 0x5020_0000).

use crate::cmsdk_uart::CmsdkUart;

/// The board's name (the folder's).
pub const NAME: &str = "mps2-an505";
/// Processor clock, which drives SysTick.
pub const SYSTICK_HZ: u32 = 20_000_000;
/// The host link's serial port.
pub type Serial = CmsdkUart;

/// UART0, secure alias (the non-secure one is 0x4020_0000).
const UART0: usize = 0x5020_0000;

/// Brings up the host serial port (UART0, 115200 baud). Call once.
pub fn serial() -> Serial {
    // SAFETY: UART0 of the AN505 image is a CMSDK APB UART whose secure alias is 0x5020_0000;
    // the program runs secure and its peripheral protection controllers are left at reset
    // (secure access allowed); called once per program, so no other value drives it.
    unsafe { CmsdkUart::new(UART0, SYSTICK_HZ, 115_200) }
}
