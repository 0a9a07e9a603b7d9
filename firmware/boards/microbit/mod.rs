//! BBC micro:bit v1, Nordic nRF51822 (Cortex-M0, 16 MHz, 256 KiB flash, 16 KiB RAM): QEMU
//! `microbit`. Its UART is the nRF51's own peripheral (not ARM's CMSDK one): the driver is in
//! `uart.rs` beside this file; TX on P0.24, RX on P0.25 (the micro:bit's USB serial port).

#[path = "uart.rs"]
mod uart;

pub use uart::Nrf51Uart;

/// The board's name (the folder's).
pub const NAME: &str = "microbit";
/// Processor clock, which drives SysTick.
pub const SYSTICK_HZ: u32 = 16_000_000;
/// The host link's serial port.
pub type Serial = Nrf51Uart;

/// Brings up the host serial port (UART0, 115200 baud, P0.24/P0.25). Call once.
pub fn serial() -> Serial {
    // SAFETY: the nRF51's UART0 is at 0x4000_2000 on every nRF51 part, always mapped; this
    // function is called once per program, so no other value drives it.
    unsafe { Nrf51Uart::new(24, 25) }
}
