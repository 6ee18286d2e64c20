//! Per-CPU data: one [`PerCpu`] per CPU, found through the GS base.
//!
//! `CPUS[i]` belongs to CPU index `i` (0 = the bootstrap processor, 1.. = the
//! application processors in start order). Each CPU points its GS base at its
//! own entry during bring-up ([`install`]); [`current`] then reads the index
//! with one `gs`-relative load, no lock, no APIC access. Every field other
//! CPUs may touch is an atomic or behind a `spin` primitive.
//!
//! Stacks are separate statics, so `PerCpu` stays small: the kernel stack of
//! each AP (the BSP keeps its boot stack), the trap stack (where the CPU
//! switches to when an interrupt, exception or system call arrives from
//! ring 3: the TSS's RSP0) and three IST stacks per CPU.
//! There are no guard pages (the identity map uses 2 MiB pages): a stack
//! overflow corrupts the neighbouring stack instead of faulting.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use apic::{CpuMsr, LocalApic};

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::interrupts;
use x86_64::registers::model_specific::GsBase;
use x86_64::structures::tss::TaskStateSegment;

use crate::platform::gdt::CpuGdt;
use crate::platform::jobs::Mailbox;

/// The most CPUs the kernel runs; the machine's extra CPUs stay asleep.
pub const MAX_CPUS: usize = 16;
/// Size of each AP's kernel stack.
pub const KERNEL_STACK_SIZE: usize = 64 * 1024;
/// Size of each interrupt-stack-table stack.
pub const IST_STACK_SIZE: usize = 16 * 1024;
/// IST stacks per CPU (double fault, NMI, machine check; see gdt.rs).
pub const IST_STACKS_PER_CPU: usize = 3;

/// The data area of one CPU.
#[repr(C)]
#[derive(Debug)]
pub struct PerCpu {
    /// This CPU's index. First field: [`current`] reads it at `gs:[0]`.
    index: usize,
    /// x2APIC id, recorded by the CPU itself once its APIC is on.
    apic_id: AtomicU32,
    /// Set by the CPU when it has finished bring-up and takes jobs and IPIs.
    online: AtomicBool,
    /// Fixed IPIs of the test vector this CPU received (checks.rs).
    pub ipi_count: AtomicU64,
    /// Local APIC timer interrupts this CPU received (time.rs).
    pub timer_ticks: AtomicU64,
    /// Interrupt handlers this CPU is inside of now (idt.rs); non-zero means
    /// interrupt context, where event sends are refused.
    pub(crate) irq_depth: AtomicU32,
    /// Work the BSP posts for this CPU (jobs.rs).
    pub(crate) mailbox: Mailbox,
    /// The TSS, with this CPU's IST stacks (gdt.rs).
    pub(crate) tss: Once<TaskStateSegment>,
    /// The GDT that holds the TSS descriptor (gdt.rs).
    pub(crate) gdt: Once<CpuGdt>,
    /// This CPU's local APIC handle (lapic.rs); `!Send`, so only this CPU
    /// touches it.
    pub(crate) lapic: CpuLocal<LocalApic<CpuMsr>>,
    /// The kernel stack pointer `ring3::enter_user` left ring 0 from, which
    /// `ring3::leave_user` returns to (read and written by that assembly
    /// only, at `gs:[offset]`).
    pub(crate) resume_rsp: AtomicU64,
    /// Top of the trap stack ([`Self::trap_stack_top`]), for that assembly.
    pub(crate) trap_top: AtomicU64,
    /// The page tables this CPU runs on (their top-level table's address;
    /// 0: the kernel's, which it starts on): process/address_space.rs
    /// keeps it, so that no one needs to read CR3.
    pub(crate) tables: AtomicU64,
}

impl PerCpu {
    const fn new(index: usize) -> Self {
        Self {
            index,
            apic_id: AtomicU32::new(u32::MAX),
            online: AtomicBool::new(false),
            ipi_count: AtomicU64::new(0),
            timer_ticks: AtomicU64::new(0),
            irq_depth: AtomicU32::new(0),
            mailbox: Mailbox::new(),
            tss: Once::new(),
            gdt: Once::new(),
            lapic: CpuLocal::new(index),
            resume_rsp: AtomicU64::new(0),
            trap_top: AtomicU64::new(0),
            tables: AtomicU64::new(0),
        }
    }

    /// The CPU index (0 = BSP).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The x2APIC id, or `None` before the CPU has enabled its APIC.
    pub fn apic_id(&self) -> Option<u32> {
        match self.apic_id.load(Ordering::Acquire) {
            u32::MAX => None,
            id => Some(id),
        }
    }

    /// Records the x2APIC id (called by the CPU itself).
    pub(crate) fn set_apic_id(&self, id: u32) {
        self.apic_id.store(id, Ordering::Release);
    }

    /// Whether the CPU finished bring-up.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Marks the CPU as up; pairs with the Acquire in [`Self::is_online`],
    /// so whoever sees it online also sees its APIC id and tables.
    pub(crate) fn set_online(&self) {
        self.online.store(true, Ordering::Release);
    }

    /// Whether this CPU runs an interrupt handler now (call it on the CPU
    /// itself: another CPU's answer is stale at once).
    pub fn in_interrupt(&self) -> bool {
        self.irq_depth.load(Ordering::Relaxed) != 0
    }

    /// Top of this CPU's kernel stack (the stack it runs on outside IST
    /// handlers).
    pub fn kernel_stack_top(&self) -> VirtAddr {
        match self.index {
            0 => {
                unsafe extern "C" {
                    // asm/boot.S
                    static boot_stack_top: u8;
                }
                VirtAddr::from_ptr(&raw const boot_stack_top)
            }
            i => AP_STACKS[i - 1].top(),
        }
    }

    /// Top of this CPU's trap stack: the TSS's RSP0, where the CPU puts
    /// the frame of every interrupt, exception and system call from ring 3.
    pub fn trap_stack_top(&self) -> VirtAddr {
        TRAP_STACKS[self.index].top()
    }

    /// Top of IST stack `n` (0..[`IST_STACKS_PER_CPU`]) of this CPU.
    pub fn ist_stack_top(&self, n: usize) -> VirtAddr {
        IST_STACKS[self.index][n].top()
    }
}

/// A value only one CPU, its owner, may use: the home of per-CPU handles
/// that are `!Send`/`!Sync` (the local APIC's).
///
/// Access is through [`with`](Self::with) only, which checks that the
/// caller runs on the owner, disables interrupts for the duration (so an
/// interrupt handler on the owner cannot alias the `&mut`), and refuses
/// nested use. Other CPUs never get a reference.
#[derive(Debug)]
pub struct CpuLocal<T> {
    owner: usize,
    in_use: AtomicBool,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is only reached through `with`, on the owning CPU, one
// borrow at a time (see the type's doc): no two CPUs, and no two contexts
// of one CPU, ever hold a reference to it together. So `T` needs neither
// `Send` nor `Sync`: it never leaves its CPU.
unsafe impl<T> Sync for CpuLocal<T> {}

impl<T> CpuLocal<T> {
    const fn new(owner: usize) -> Self {
        Self {
            owner,
            in_use: AtomicBool::new(false),
            value: UnsafeCell::new(None),
        }
    }

    /// Runs `f` on the value (`None` until [`set`](Self::set)), on the
    /// owning CPU, with interrupts disabled.
    ///
    /// # Panics
    /// If called on another CPU, or from inside `f` (nested use).
    pub fn with<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> R {
        interrupts::without_interrupts(|| {
            assert_eq!(current_index(), self.owner, "CpuLocal used off its CPU");
            assert!(
                !self.in_use.swap(true, Ordering::Acquire),
                "CpuLocal used re-entrantly"
            );
            // SAFETY: we are on the owner with interrupts off and the
            // in-use flag taken, so this is the only reference (type doc).
            let r = f(unsafe { &mut *self.value.get() });
            self.in_use.store(false, Ordering::Release);
            r
        })
    }

    /// Stores the value (on the owning CPU).
    pub fn set(&self, value: T) {
        self.with(|slot| *slot = Some(value));
    }
}

/// Stack memory. Rust never reads or writes it: only the CPU that runs on
/// it, through RSP. Hence the `UnsafeCell` (the bytes change) and the
/// manual `Sync` (no Rust-visible data races are possible).
#[repr(C, align(16))]
struct Stack<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: see the type's doc: Rust code only ever takes the address.
unsafe impl<const N: usize> Sync for Stack<N> {}

impl<const N: usize> Stack<N> {
    const fn new() -> Self {
        Self(UnsafeCell::new([0; N]))
    }

    fn top(&self) -> VirtAddr {
        VirtAddr::from_ptr(self.0.get()) + N as u64
    }
}

static CPUS: [PerCpu; MAX_CPUS] = {
    let mut cpus = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        cpus[i].index = i;
        cpus[i].lapic.owner = i;
        i += 1;
    }
    cpus
};

static AP_STACKS: [Stack<KERNEL_STACK_SIZE>; MAX_CPUS - 1] = [const { Stack::new() }; MAX_CPUS - 1];

/// Size of each trap stack (system calls run event sends on it).
pub const TRAP_STACK_SIZE: usize = 64 * 1024;

static TRAP_STACKS: [Stack<TRAP_STACK_SIZE>; MAX_CPUS] = [const { Stack::new() }; MAX_CPUS];

static IST_STACKS: [[Stack<IST_STACK_SIZE>; IST_STACKS_PER_CPU]; MAX_CPUS] =
    [const { [const { Stack::new() }; IST_STACKS_PER_CPU] }; MAX_CPUS];

/// The data area of CPU `index`.
///
/// # Panics
/// If `index >= MAX_CPUS`.
pub fn cpu(index: usize) -> &'static PerCpu {
    &CPUS[index]
}

/// All data areas, online or not.
pub fn all() -> &'static [PerCpu] {
    &CPUS
}

/// Points this CPU's GS base at `CPUS[index]`. Each CPU calls it once,
/// early in bring-up, before [`current`] is used.
pub fn install(index: usize) -> &'static PerCpu {
    let cpu = &CPUS[index];
    cpu.trap_top
        .store(cpu.trap_stack_top().as_u64(), Ordering::Relaxed);
    GsBase::write(VirtAddr::from_ptr(cpu));
    cpu
}

/// The running CPU's data area.
///
/// Only valid after [`install`] on this CPU (boot.rs does it first thing on
/// the BSP, smp.rs on each AP).
pub fn current() -> &'static PerCpu {
    let index: usize;
    // SAFETY: after `install`, GS points at a `PerCpu` whose first field,
    // `index`, never changes; reading it has no side effects.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) index, options(nostack, readonly, preserves_flags));
    }
    &CPUS[index]
}

/// The running CPU's data area if [`install`] ran on it, checked through
/// the GS base MSR. For the panic path, which may run before `install`.
pub fn try_current() -> Option<&'static PerCpu> {
    let base = GsBase::read().as_u64() as usize;
    CPUS.iter()
        .find(|cpu| core::ptr::from_ref(*cpu) as usize == base)
}

/// Index of the running CPU.
pub fn current_index() -> usize {
    current().index
}

/// The online CPUs.
pub fn online() -> impl Iterator<Item = &'static PerCpu> {
    CPUS.iter().filter(|cpu| cpu.is_online())
}
