//! ST Nucleo-F446RE (STM32F446RE) on `stm32f4xx-hal`: a real board, flashed and run with
//! `probe-rs run --chip STM32F446RETx` (defmt over RTT, the `rtt` feature).
//!
//! Clock: the ST-LINK's 8 MHz MCO as HSE bypass, PLL to 168 MHz (180 MHz would need the
//! over-drive mode), set by the HAL's `freeze`. Its clock-tree solver links panics that this
//! fixed configuration cannot reach (`unwrap`/`expect` on PLL divider searches); they are the
//! only panic paths of this board's `eval`, and `cargo xtask test` allows exactly them (callers
//! in `stm32f4xx_hal::rcc`) for this real-hardware target. Serial: USART2 on PA2 (TX) / PA3 (RX), wired to the ST-LINK's virtual COM
//! port: `/dev/ttyACM0` on the host, which `microdnn eval --device /dev/ttyACM0` opens.

use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
use stm32f4xx_hal::serial::Serial as HalSerial;

use crate::nb_serial::NbSerial;
use crate::runtime;

/// The board's name (the folder's).
pub const NAME: &str = "nucleo-f446re";
/// The core clock, which drives SysTick.
pub const SYSTICK_HZ: u32 = 168_000_000;
/// The host link's serial port: the HAL's USART2, adapted to `embedded-io`.
pub type Serial = NbSerial<HalSerial<pac::USART2>>;

/// Brings up the clocks (HSE 8 MHz bypass, PLL 168 MHz) and USART2 at 115200 baud. Call once.
pub fn serial() -> Serial {
    let Some(dp) = pac::Peripherals::take() else {
        defmt::error!("nucleo-f446re: device peripherals already taken");
        runtime::exit(false)
    };
    let mut rcc = freeze_clocks(dp.RCC);
    let gpioa = dp.GPIOA.split(&mut rcc);
    match HalSerial::new(dp.USART2, (gpioa.pa2, gpioa.pa3), 115_200.bps(), &mut rcc) {
        Ok(serial) => NbSerial(serial),
        Err(_) => {
            defmt::error!("nucleo-f446re: USART2 rejected 115200 baud");
            runtime::exit(false)
        }
    }
}

/// HSE 8 MHz bypass and PLL to 168 MHz through the HAL's clock-tree solver. Kept out of line:
/// it is the one function of this board allowed to reach the solver's (unreachable) panics, and
/// `cargo xtask test` checks that no other code of the program can panic.
#[inline(never)]
fn freeze_clocks(rcc: pac::RCC) -> stm32f4xx_hal::rcc::Rcc {
    rcc.freeze(
        Config::hse(8.MHz())
            .bypass_hse_oscillator()
            .sysclk(SYSTICK_HZ.Hz()),
    )
}
