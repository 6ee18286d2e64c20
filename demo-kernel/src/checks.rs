//! Self-checks of the platform, run by `kmain` before the scenarios.
//!
//! Each check prints what it measured and panics (ending the run with the
//! failure status) when something is wrong, so a broken platform never
//! reaches the scenarios.

use core::sync::atomic::Ordering;

use crate::multiboot::{BootInfo, RegionKind};
use crate::{jobs, lapic, memory, percpu, time, user_region};

/// Prints the firmware memory map and the allocators' sizes.
pub fn memory_summary(info: &BootInfo) {
    println!("memory map:");
    for r in &info.regions {
        let kind = match r.kind {
            RegionKind::Available => "available",
            RegionKind::AcpiReclaimable => "ACPI reclaimable",
            RegionKind::Reserved(_) => "reserved",
        };
        println!(
            "  {:#012x}..{:#012x} {:>8} KiB {kind}",
            r.start,
            r.end,
            (r.end - r.start) / 1024
        );
    }
    let image = crate::boot::kernel_image();
    let (free, total) = memory::stats();
    println!(
        "memory: {} MiB available; kernel image {:#x}..{:#x}; {} free frames ({} MiB); \
         user region {:#x}..{:#x} ({} MiB)",
        info.available_bytes() >> 20,
        image.start,
        image.end,
        free,
        (total * memory::FRAME_SIZE) >> 20,
        user_region::USER_BASE,
        user_region::USER_END,
        (user_region::USER_END - user_region::USER_BASE) >> 20,
    );
}

/// Allocates, checks and frees frames and user pages.
pub fn allocators() {
    const N: usize = 64;
    let (free_before, _) = memory::stats();
    let mut frames = heapless::Vec::<_, N>::new();
    for i in 0..N {
        let frame = memory::alloc_frame().expect("frame allocator: out of memory");
        let p = memory::frame_ptr(frame);
        assert!(
            p as usize % memory::FRAME_SIZE == 0,
            "frame not page aligned"
        );
        assert!(
            !user_region::contains(p as usize, 1),
            "frame inside the user region"
        );
        // SAFETY: a fresh frame, ours alone, identity-mapped and FRAME_SIZE
        // bytes long.
        let bytes = unsafe { core::slice::from_raw_parts_mut(p, memory::FRAME_SIZE) };
        assert!(bytes.iter().all(|&b| b == 0), "frame not zeroed");
        bytes.fill(i as u8 + 1);
        assert!(!frames.contains(&frame), "frame handed out twice");
        frames.push(frame).expect("N frames fit");
    }
    for frame in frames {
        // SAFETY: allocated above; the slice into it is gone.
        unsafe { memory::free_frame(frame) };
    }
    assert_eq!(memory::stats().0, free_before, "frames leaked");
    // A freed frame comes back zeroed.
    let frame = memory::alloc_frame().expect("frame allocator: out of memory");
    // SAFETY: as above.
    let bytes =
        unsafe { core::slice::from_raw_parts(memory::frame_ptr(frame), memory::FRAME_SIZE) };
    assert!(bytes.iter().all(|&b| b == 0), "reused frame not zeroed");
    // SAFETY: allocated just above; `bytes` is not used any more.
    unsafe { memory::free_frame(frame) };
    println!("frame allocator check: ok ({N} frames allocated, zeroed, freed)");

    let mut pages = heapless::Vec::<usize, N>::new();
    for _ in 0..N {
        let page = user_region::alloc_page().expect("user region full");
        assert!(
            user_region::contains(page, user_region::PAGE_SIZE),
            "user page outside region"
        );
        assert_eq!(page % user_region::PAGE_SIZE, 0, "user page not aligned");
        assert!(!pages.contains(&page), "user page handed out twice");
        pages.push(page).expect("N pages fit");
    }
    assert!(
        !user_region::contains(user_region::USER_END - 8, 16),
        "range past the end accepted"
    );
    assert!(
        !user_region::contains(usize::MAX - 4, 8),
        "wrapping range accepted"
    );
    assert!(
        !user_region::contains(user_region::USER_BASE - 1, 1),
        "range before the start accepted"
    );
    for page in pages {
        user_region::free_page(page);
    }
    assert_eq!(user_region::used_pages(), 0, "user pages leaked");
    println!("user region check: ok ({N} pages allocated and freed, bounds checks hold)");
}

/// Checks that every CPU smp.rs started (from the MADT) came up, and
/// prints its APIC id.
pub fn cpus_online(expected: usize) {
    let online = percpu::online().count();
    for cpu in percpu::online() {
        println!(
            "cpu {}: online, x2APIC id {}",
            cpu.index(),
            cpu.apic_id().unwrap_or(u32::MAX)
        );
    }
    assert_eq!(
        online, expected,
        "only {online} of {expected} CPUs came online"
    );
    println!("smp check: all {expected} CPUs online");
}

fn count_test_ipi(_frame: &mut crate::idt::InterruptFrame) {
    percpu::current().ipi_count.fetch_add(1, Ordering::Relaxed);
}

/// The job the job check runs: proves it ran on the CPU it was sent to.
fn whoami(arg: usize) -> usize {
    percpu::current_index() * 1000 + arg
}

/// Sends a fixed IPI to every AP and waits for its handler to count it;
/// runs a job on every AP.
pub fn ipis() {
    crate::idt::register(lapic::IPI_TEST_VECTOR, count_test_ipi);
    for cpu in percpu::online().filter(|c| c.index() != 0) {
        let before = cpu.ipi_count.load(Ordering::Relaxed);
        lapic::send_ipi(cpu.index(), lapic::IPI_TEST_VECTOR);
        let start = time::now_ns();
        while cpu.ipi_count.load(Ordering::Relaxed) == before {
            assert!(
                time::now_ns() - start < 1_000_000_000,
                "cpu {} did not receive a fixed IPI within 1 s",
                cpu.index()
            );
            core::hint::spin_loop();
        }
        println!("ipi check: cpu {} ok", cpu.index());

        let answer = jobs::run_on(cpu.index(), whoami, 7).expect("cpu is online and idle");
        assert_eq!(answer, cpu.index() * 1000 + 7, "job ran on the wrong CPU");
    }
    crate::idt::unregister(lapic::IPI_TEST_VECTOR);
    println!("job check: every AP ran a posted job");
}

/// Tick rate of the timer check.
const TICK_HZ: u32 = 1000;
/// How long the timer check counts ticks.
const TICK_WINDOW_MS: u64 = 200;

/// Runs the local APIC timer periodically on an AP for a short window.
fn tick_window(_arg: usize) -> usize {
    let cpu = percpu::current();
    let before = cpu.timer_ticks.load(Ordering::Relaxed);
    let start = time::now_ns();
    time::start_tick(TICK_HZ);
    // Halt between ticks rather than spin: each tick ends the halt, and an
    // idle vCPU leaves the host's cores to the others.
    while time::now_ns() - start < TICK_WINDOW_MS * 1_000_000 {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    time::stop_tick();
    let ns = time::now_ns() - start;
    let ticks = cpu.timer_ticks.load(Ordering::Relaxed) - before;
    (ticks * 1_000_000_000 / ns.max(1)) as usize
}

/// Measures the tick rate of the APIC timer on the last AP (or the BSP if
/// it is alone).
pub fn timer() {
    let target = percpu::online().map(|c| c.index()).max().unwrap_or(0);
    let hz = if target == 0 {
        tick_window(0)
    } else {
        jobs::run_on(target, tick_window, 0).expect("cpu is online and idle")
    };
    println!(
        "timer check: cpu {target} measured {hz} Hz (programmed {TICK_HZ} Hz, APIC timer {} kHz, TSC {} MHz)",
        lapic::timer_hz() / 1000,
        time::tsc_hz() / 1_000_000
    );
    // TCG on a loaded host delivers ticks late and merges the ones a
    // descheduled vCPU missed: only a timer that hardly ticks, or ticks
    // wildly too fast, fails.
    assert!(
        hz >= TICK_HZ as usize / 20,
        "the APIC timer barely ticks ({hz} Hz)"
    );
    assert!(
        hz <= TICK_HZ as usize * 4,
        "the APIC timer ticks too fast ({hz} Hz)"
    );
}
