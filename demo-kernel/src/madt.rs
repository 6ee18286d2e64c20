//! The machine's CPUs as the firmware lists them: the ACPI MADT, found
//! through the RSDP.
//!
//! rust-osdev's `acpi` crate does the parsing (version 5.2 without `alloc`:
//! the 6.x releases need nightly). It searches the BIOS areas for the RSDP
//! (the first KiB of the EBDA, then 0xE0000..0xFFFFF), follows it to the
//! RSDT or XSDT, validates the MADT's checksum and iterates its entries. A
//! Multiboot v1 loader passes no RSDP (Multiboot2 and UEFI would), so the
//! BIOS search is how this kernel finds it, under SeaBIOS, qboot and a
//! real PC's BIOS or CSM alike.
//!
//! We keep the APIC id of every *enabled* processor, in the firmware's
//! order: Local APIC entries (type 0) and Local x2APIC entries (type 9,
//! used for ids above 254). The ids need not be 0..N-1 (QEMU leaves holes
//! when a socket's core count is not a power of two; real machines
//! often do), so nothing may equate a CPU's index with its APIC id: the
//! index is the kernel's (0 = the BSP, then the APs in start order), the
//! id is the hardware's, kept in `percpu` and used for every IPI. Entries
//! without the enabled bit (hot-pluggable or disabled CPUs) are counted,
//! not started.
//!
//! The crate reaches memory through an [`AcpiHandler`]: ours is the
//! identity map of boot.rs, so "mapping" a table is a bounds check.

use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::rsdp::Rsdp;
use acpi::{AcpiError, AcpiHandler, AcpiTables, PhysicalMapping};
use heapless::Vec;

/// The most enabled CPUs whose ids we keep (the kernel runs at most
/// `percpu::MAX_CPUS` of them; the rest are only counted).
pub const MAX_LISTED: usize = 64;

/// Local APIC / Local x2APIC flags: the processor is usable now.
const ENABLED: u32 = 1 << 0;

/// What the MADT says about the processors.
#[derive(Debug)]
pub struct Cpus {
    /// Physical address of the RSDP.
    pub rsdp: usize,
    /// The RSDP's revision (0: ACPI 1.0 with an RSDT, 2+: an XSDT).
    pub revision: u8,
    /// APIC ids of the enabled processors, in MADT order (the first
    /// [`MAX_LISTED`]).
    pub apic_ids: Vec<u32, MAX_LISTED>,
    /// Enabled processors, all of them.
    pub enabled: usize,
    /// Entries without the enabled bit.
    pub disabled: usize,
}

/// The identity map as the `acpi` crate's view of physical memory.
#[derive(Debug, Clone, Copy)]
struct IdentityMap;

/// The end of the identity map (boot.rs).
const MAPPED_LIMIT: usize = 4 << 30;

impl AcpiHandler for IdentityMap {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        // Tables above 4 GiB would need page-table code this kernel does not
        // have; the trait cannot fail, so say so plainly.
        assert!(
            phys.checked_add(size)
                .is_some_and(|end| end <= MAPPED_LIMIT),
            "ACPI structure at {phys:#x} (+{size:#x}) lies above the 4 GiB identity map"
        );
        let ptr = NonNull::new(core::ptr::with_exposed_provenance_mut::<T>(phys))
            .expect("the crate never maps physical address 0");
        // SAFETY: the range is inside the identity map (checked above), so
        // `ptr` is the kernel address of `phys` and stays valid forever;
        // the crate only reads firmware tables through it.
        unsafe { PhysicalMapping::new(phys, ptr, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// Finds the RSDP and reads the processors from the MADT.
///
/// # Errors
/// The crate's error when there is no RSDP (no ACPI, or a UEFI machine
/// without CSM), no MADT, or a table fails its checksum.
pub fn cpus() -> Result<Cpus, AcpiError> {
    // SAFETY: BIOS boot (Multiboot v1 loaders run from BIOS), so the EBDA
    // pointer at 0x40e and the BIOS ROM area are where the crate looks; all
    // of it is RAM or ROM below 1 MiB, identity-mapped.
    let rsdp = unsafe { Rsdp::search_for_on_bios(IdentityMap)? };
    let (rsdp_addr, revision) = (rsdp.physical_start(), rsdp.revision());
    // SAFETY: `search_for_on_bios` validated the RSDP (signature and
    // checksums); the tables it points to are firmware memory below 4 GiB
    // (checked by the handler).
    let tables = unsafe { AcpiTables::from_validated_rsdp(IdentityMap, rsdp)? };
    let madt = tables.find_table::<Madt>()?;

    let mut cpus = Cpus {
        rsdp: rsdp_addr,
        revision,
        apic_ids: Vec::new(),
        enabled: 0,
        disabled: 0,
    };
    for entry in madt.get().entries() {
        let (id, flags) = match entry {
            MadtEntry::LocalApic(e) => (u32::from(e.apic_id), e.flags),
            MadtEntry::LocalX2Apic(e) => (e.x2apic_id, e.flags),
            _ => continue,
        };
        if flags & ENABLED == 0 {
            cpus.disabled += 1;
            continue;
        }
        // A processor listed twice (as xAPIC and x2APIC) counts once.
        if cpus.apic_ids.contains(&id) {
            continue;
        }
        cpus.enabled += 1;
        let _ = cpus.apic_ids.push(id);
    }
    Ok(cpus)
}
