#![no_std]
#![no_main]
use cortex_m_rt::entry;
use microdnn_firmware::{board, icount::InstructionCounter, stack::StackMeter};

#[entry]
fn main() -> ! {
    let meter = StackMeter::paint();
    let p = cortex_m::Peripherals::take().unwrap();
    let counter = InstructionCounter::start(p.SYST);
    let xs = core::hint::black_box([1.0f32; 1000]);
    let (s, n) = counter.measure(|| xs.iter().sum::<f32>());
    defmt::println!(
        "sum {} took {} instructions, overhead {}",
        s,
        n,
        counter.overhead()
    );
    defmt::println!(
        "stack {} of {}",
        meter.peak_bytes(),
        StackMeter::capacity_bytes()
    );
    board::exit(true)
}
