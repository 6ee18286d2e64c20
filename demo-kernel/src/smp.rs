//! Starting the application processors: INIT-SIPI-SIPI and a trampoline.
//!
//! The BSP learns the CPUs from the ACPI MADT (madt.rs: their number and
//! APIC ids), copies `asm/trampoline.S` to physical [`TRAMPOLINE_BASE`]
//! (below 1 MiB, page-aligned: a SIPI can only start a CPU at
//! `vector << 12`), and starts the APs one at a time: fill in the
//! trampoline's parameter block (page tables, stack, CPU index, entry),
//! let the `apic` crate send INIT, INIT de-assert and SIPI twice (the
//! second is ignored by a CPU the first one started) to the AP's APIC id,
//! and wait for the AP to report online. One at a time because all APs
//! share the one parameter block.
//!
//! CPU index and APIC id: the index is the kernel's (0 = the BSP, then the
//! APs in MADT order), the id is whatever the firmware lists (not
//! necessarily 0..N-1). Each AP records the id it reads from its own APIC;
//! the BSP checks it against the MADT's, and every IPI goes to the
//! recorded id (lapic.rs), never to an index.
//!
//! Under QEMU, fw_cfg's CPU count cross-checks the MADT (fwcfg.rs).

use core::arch::global_asm;

use apic::StartupPage;

use crate::multiboot::BootInfo;
use crate::percpu::{self, MAX_CPUS};
use crate::{boot, fwcfg, gdt, idt, jobs, lapic, madt, time};

global_asm!(include_str!("asm/trampoline.S"), options(att_syntax));

/// Where the trampoline runs.
pub const TRAMPOLINE_BASE: usize = 0x8000;
/// How long an AP may take from SIPI to online (TCG on a busy host is slow).
const AP_START_TIMEOUT_US: u64 = 2_000_000;

/// The parameter block at the end of the trampoline (`ap_trampoline_params`).
#[repr(C)]
struct TrampolineParams {
    cr3: u64,
    stack_top: u64,
    entry: u64,
    cpu_index: u64,
}

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_params: u8;
    static ap_trampoline_end: u8;
}

/// Starts every enabled CPU the MADT lists (up to [`MAX_CPUS`]) and
/// returns how many are online, the BSP included. Runs on the BSP after its
/// own APIC, IDT and the TSC calibration are set up.
///
/// # Panics
/// If the trampoline page is not free RAM, an AP does not come online in
/// time or reports another APIC id, or QEMU's fw_cfg disagrees with the
/// MADT about the CPU count.
pub fn start_aps(info: &BootInfo) -> usize {
    let bsp_id = percpu::current()
        .apic_id()
        .expect("the BSP's APIC is on before SMP start");
    let aps = application_processors(bsp_id);
    if !aps.is_empty() {
        let page = TRAMPOLINE_BASE as u64;
        assert!(
            info.is_available(page, page + 4096),
            "the AP trampoline page {page:#x} is not free RAM in the firmware's memory map"
        );
        install_trampoline();
    }
    for (i, &apic_id) in aps.iter().enumerate() {
        start_ap(i + 1, apic_id);
    }
    aps.len() + 1
}

/// The APIC ids of the APs to start, from the MADT: every enabled CPU but
/// the BSP, at most `MAX_CPUS - 1`.
fn application_processors(bsp_id: u32) -> heapless::Vec<u32, { MAX_CPUS - 1 }> {
    let mut aps = heapless::Vec::new();
    let cpus = match madt::cpus() {
        Ok(cpus) => cpus,
        Err(e) => {
            println!("smp: no usable ACPI MADT ({e:?}): running on the boot CPU alone");
            cross_check(1);
            return aps;
        }
    };
    print!(
        "smp: ACPI MADT (RSDP at {:#x}, revision {}) lists {} enabled CPUs, APIC ids",
        cpus.rsdp, cpus.revision, cpus.enabled
    );
    for id in &cpus.apic_ids {
        print!(" {id}");
    }
    println!(
        " ({} more entries not enabled); the BSP is APIC id {bsp_id}",
        cpus.disabled
    );
    assert!(
        cpus.apic_ids.contains(&bsp_id) || cpus.enabled > cpus.apic_ids.len(),
        "the MADT does not list the boot CPU (APIC id {bsp_id})"
    );
    cross_check(cpus.enabled);
    for &id in cpus.apic_ids.iter().filter(|&&id| id != bsp_id) {
        if aps.push(id).is_err() {
            println!(
                "smp: the machine has {} CPUs; demo-kernel runs the first {MAX_CPUS}",
                cpus.enabled
            );
            break;
        }
    }
    aps
}

/// Under QEMU, checks the MADT's count against fw_cfg's.
fn cross_check(madt_count: usize) {
    if let Some(qemu) = fwcfg::cpu_count() {
        assert_eq!(
            qemu, madt_count,
            "QEMU's fw_cfg reports {qemu} CPUs, the ACPI MADT {madt_count}"
        );
        println!("smp: QEMU's fw_cfg agrees: {qemu} CPUs");
    }
}

/// Copies the trampoline to [`TRAMPOLINE_BASE`].
fn install_trampoline() {
    let start = &raw const ap_trampoline_start;
    let len = (&raw const ap_trampoline_end) as usize - start as usize;
    assert!(len <= 4096, "AP trampoline larger than a page");
    // SAFETY: [0x8000, 0x9000) is conventional memory below the kernel that
    // no allocator hands out (memory.rs starts above the kernel image), and
    // the Multiboot information was copied out before (main.rs). The source
    // is the trampoline's bytes in the kernel image.
    unsafe { core::ptr::copy_nonoverlapping(start, TRAMPOLINE_BASE as *mut u8, len) };
}

fn start_ap(index: usize, apic_id: u32) {
    let cpu = percpu::cpu(index);
    let params_offset =
        (&raw const ap_trampoline_params) as usize - (&raw const ap_trampoline_start) as usize;
    let params = (TRAMPOLINE_BASE + params_offset) as *mut TrampolineParams;
    let entry: extern "C" fn(usize) -> ! = ap_entry;
    // SAFETY: the block lies inside the copied trampoline page, is 8-byte
    // aligned (`.balign 8`), and no AP reads it now: the previous AP is
    // online, so it has left the trampoline, and the next is not started.
    // Volatile: an AP reads it, behind the compiler's back.
    unsafe {
        params.write_volatile(TrampolineParams {
            cr3: boot::boot_page_table(),
            stack_top: cpu.kernel_stack_top().as_u64(),
            entry: entry as usize as u64,
            cpu_index: index as u64,
        });
    }

    let page = StartupPage::from_addr(TRAMPOLINE_BASE as u64).expect("0x8000 is a SIPI page");
    // SAFETY: the AP has not run yet (it waits for SIPI since power-on),
    // and the trampoline and its parameters are in place, pointing at page
    // tables, a stack and an entry that are ready for it.
    if let Err(e) = unsafe { lapic::start_ap(apic_id, page) } {
        panic!("starting CPU {index} (APIC id {apic_id}): {e}");
    }
    let start = time::now_ns();
    while !cpu.is_online() {
        assert!(
            time::now_ns() - start < AP_START_TIMEOUT_US * 1000,
            "CPU {index} (APIC id {apic_id}) did not come online after INIT-SIPI-SIPI"
        );
        core::hint::spin_loop();
    }
    assert_eq!(
        cpu.apic_id(),
        Some(apic_id),
        "CPU {index} was started at APIC id {apic_id} but reports another id"
    );
}

/// The Rust entry of an AP, called by the trampoline in long mode on the
/// AP's own kernel stack, interrupts off.
extern "C" fn ap_entry(index: usize) -> ! {
    let cpu = percpu::install(index);
    gdt::init(cpu);
    idt::load();
    lapic::init_ap();
    cpu.set_online();
    log::debug!("cpu {index} online, APIC id {:?}", cpu.apic_id());
    jobs::ap_idle_loop()
}
