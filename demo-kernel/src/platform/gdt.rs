//! Per-CPU GDT and TSS, with the interrupt stack table (IST).
//!
//! Each CPU gets its own TSS (a TSS descriptor is marked busy when loaded, so
//! CPUs cannot share one) and so its own GDT. The IST gives the handlers of
//! double fault, NMI and machine check a known-good stack: they can strike
//! with RSP anywhere, including an overflowed kernel stack.
//!
//! Layout (same on every CPU): null, kernel code 0x08, kernel data 0x10,
//! user data 0x1b, user code 0x23, TSS 0x28 (two slots). The code and data
//! selectors match the boot GDT, so switching from it changes nothing.

use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use crate::platform::percpu::PerCpu;

/// The ring-3 code selector (GDT entry 4, RPL 3).
pub const USER_CS: u16 = 0x23;
/// The ring-3 data and stack selector (GDT entry 3, RPL 3).
pub const USER_SS: u16 = 0x1b;

/// IST slot (0-based, as in the TSS) of the double-fault handler.
pub const IST_DOUBLE_FAULT: u16 = 0;
/// IST slot of the NMI handler.
pub const IST_NMI: u16 = 1;
/// IST slot of the machine-check handler.
pub const IST_MACHINE_CHECK: u16 = 2;

/// A CPU's GDT and the selectors of its entries.
#[derive(Debug)]
pub struct CpuGdt {
    table: GlobalDescriptorTable,
    /// Selectors into `table`.
    pub selectors: Selectors,
}

/// The segment selectors of a CPU's GDT.
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    /// 64-bit ring-0 code.
    pub kernel_code: SegmentSelector,
    /// Ring-0 data (and stack).
    pub kernel_data: SegmentSelector,
    /// Ring-3 data (and stack).
    pub user_data: SegmentSelector,
    /// 64-bit ring-3 code.
    pub user_code: SegmentSelector,
    /// This CPU's TSS.
    pub tss: SegmentSelector,
}

/// Builds and loads `cpu`'s TSS and GDT, and reloads the segment registers.
/// Runs once on each CPU, on that CPU.
pub fn init(cpu: &'static PerCpu) {
    let tss = cpu.tss.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for slot in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
            tss.interrupt_stack_table[usize::from(slot)] = cpu.ist_stack_top(usize::from(slot));
        }
        // The stack for interrupts, exceptions and system calls that arrive
        // in ring 3: a stack of its own, so a vcore's trap never lands on
        // the frames of the kernel loop that entered ring 3 (ring3.rs).
        tss.privilege_stack_table[0] = cpu.trap_stack_top();
        tss
    });
    let gdt = cpu.gdt.call_once(|| {
        let mut table = GlobalDescriptorTable::new();
        let kernel_code = table.append(Descriptor::kernel_code_segment());
        let kernel_data = table.append(Descriptor::kernel_data_segment());
        let user_data = table.append(Descriptor::user_data_segment());
        let user_code = table.append(Descriptor::user_code_segment());
        let tss = table.append(Descriptor::tss_segment(tss));
        CpuGdt {
            table,
            selectors: Selectors {
                kernel_code,
                kernel_data,
                user_data,
                user_code,
                tss,
            },
        }
    });
    gdt.table.load();
    let sel = gdt.selectors;
    assert!(
        sel.user_code.0 == USER_CS && sel.user_data.0 == USER_SS,
        "GDT: user selectors moved"
    );
    // SAFETY: the selectors name the descriptors just loaded, which are valid
    // flat 64-bit segments and this CPU's own TSS (loaded once per CPU, so
    // never already busy). FS and GS are left alone: reloading GS would
    // clear the GS base that percpu.rs set.
    unsafe {
        CS::set_reg(sel.kernel_code);
        DS::set_reg(sel.kernel_data);
        ES::set_reg(sel.kernel_data);
        SS::set_reg(sel.kernel_data);
        load_tss(sel.tss);
    }
}
