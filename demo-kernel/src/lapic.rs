//! TEMPORARY raw x2APIC access until the apic crate lands.
#![allow(missing_docs)]

use x86_64::registers::model_specific::Msr;

pub const TIMER_VECTOR: u8 = 0xf0;
pub const WAKE_VECTOR: u8 = 0xf1;
pub const IPI_TEST_VECTOR: u8 = 0xf2;

fn wr(msr: u32, v: u64) {
    // SAFETY: temp
    unsafe { Msr::new(msr).write(v) }
}
fn rd(msr: u32) -> u64 {
    // SAFETY: temp
    unsafe { Msr::new(msr).read() }
}

static TIMER_HZ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn has_x2apic() -> bool {
    // SAFETY: cpuid
    let r = unsafe { core::arch::x86_64::__cpuid(1) };
    r.ecx & (1 << 21) != 0
}

fn pic_off() {
    use x86_64::instructions::port::Port;
    // SAFETY: temp
    unsafe {
        let mut c1 = Port::<u8>::new(0x20);
        let mut d1 = Port::<u8>::new(0x21);
        let mut c2 = Port::<u8>::new(0xa0);
        let mut d2 = Port::<u8>::new(0xa1);
        c1.write(0x11);
        c2.write(0x11);
        d1.write(0x20);
        d2.write(0x28);
        d1.write(4);
        d2.write(2);
        d1.write(1);
        d2.write(1);
        d1.write(0xff);
        d2.write(0xff);
    }
}

fn enable() {
    let base = rd(0x1b);
    wr(0x1b, base | (1 << 11));
    wr(0x1b, base | (1 << 11) | (1 << 10));
    wr(0x80f, 0x1ff);
    wr(0x832, 1 << 16);
    wr(0x835, 1 << 16);
    wr(0x836, 1 << 16);
    wr(0x837, 1 << 16);
    crate::percpu::current().set_apic_id(rd(0x802) as u32);
}

pub fn init_bsp() -> Result<(), &'static str> {
    if !has_x2apic() {
        return Err("x2APIC not supported by this CPU");
    }
    pic_off();
    enable();
    crate::idt::register(TIMER_VECTOR, crate::time::on_tick);
    crate::idt::register(WAKE_VECTOR, |_| {});
    // calibrate
    wr(0x83e, 0b1011); // divide by 1
    wr(0x838, u32::MAX as u64);
    crate::time::delay_us(10_000);
    let cur = rd(0x839);
    wr(0x838, 0);
    let per_10ms = u32::MAX as u64 - cur;
    TIMER_HZ.store(per_10ms * 100, core::sync::atomic::Ordering::Relaxed);
    Ok(())
}

pub fn timer_hz() -> u64 {
    TIMER_HZ.load(core::sync::atomic::Ordering::Relaxed)
}

pub fn init_ap() {
    enable();
}

pub fn eoi() {
    wr(0x80b, 0);
}

pub fn send_ipi(cpu: usize, vector: u8) {
    let id = crate::percpu::cpu(cpu)
        .apic_id()
        .expect("cpu has no apic id");
    wr(0x830, (u64::from(id) << 32) | u64::from(vector));
}

pub fn send_init(apic_id: u32) {
    wr(0x830, (u64::from(apic_id) << 32) | (5 << 8) | (1 << 14));
}

pub fn send_sipi(apic_id: u32, page: u8) {
    wr(
        0x830,
        (u64::from(apic_id) << 32) | (6 << 8) | u64::from(page),
    );
}

pub fn timer_periodic(hz: u32) {
    wr(0x83e, 0b1011);
    wr(0x832, (1 << 17) | u64::from(TIMER_VECTOR));
    wr(0x838, timer_hz() / u64::from(hz));
}

pub fn timer_stop() {
    wr(0x838, 0);
    wr(0x832, 1 << 16);
}
