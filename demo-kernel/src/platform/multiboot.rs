//! The Multiboot v1 information structure: memory map and command line.
//!
//! The loader leaves the structure somewhere in low memory (QEMU: just above
//! the AP trampoline page) where the frame allocator or the trampoline may
//! later overwrite it. So [`BootInfo::parse`] copies out everything the kernel
//! needs, first thing, and nothing keeps a pointer into it.
//!
//! Reference: the Multiboot Specification 0.6.96, section 3.3.

use heapless::{String, Vec};

/// The most memory-map entries we keep (QEMU reports about six).
pub const MAX_REGIONS: usize = 32;

/// Kind of a physical memory range, from the map's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// Usable RAM (type 1).
    Available,
    /// ACPI tables, reclaimable after reading them (type 3).
    AcpiReclaimable,
    /// Anything else: firmware, devices, defective RAM.
    Reserved(u32),
}

/// One entry of the memory map: `[start, end)` in physical bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemRegion {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What the firmware says the range is.
    pub kind: RegionKind,
}

/// What the kernel keeps of the Multiboot information.
#[derive(Debug)]
pub struct BootInfo {
    /// The firmware memory map, in the loader's order.
    pub regions: Vec<MemRegion, MAX_REGIONS>,
    /// The kernel command line (QEMU `-append`), truncated to 128 bytes.
    pub cmdline: String<128>,
}

// Flag bits of `flags` (offset 0) saying which fields are valid.
const INFO_CMDLINE: u32 = 1 << 2;
const INFO_MEM_MAP: u32 = 1 << 6;

// Field offsets in the information structure.
const OFF_FLAGS: usize = 0;
const OFF_CMDLINE: usize = 16;
const OFF_MMAP_LENGTH: usize = 44;
const OFF_MMAP_ADDR: usize = 48;

impl BootInfo {
    /// Copies the memory map and command line out of the structure at
    /// physical address `info`.
    ///
    /// # Safety
    /// `info` must be the address a Multiboot v1 loader passed in EBX, and the
    /// structure and the buffers it points to must not have been overwritten
    /// yet. (They are read through the identity mapping of boot.rs.)
    pub unsafe fn parse(info: usize) -> Self {
        // SAFETY: the caller vouches for `info`; every read below is a
        // field the loader wrote, read unaligned because the spec promises
        // no alignment for the memory map.
        let read32 = |addr: usize| unsafe { (addr as *const u32).read_unaligned() };
        // SAFETY: as above.
        let read64 = |addr: usize| unsafe { (addr as *const u64).read_unaligned() };

        let flags = read32(info + OFF_FLAGS);
        let mut regions = Vec::new();
        if flags & INFO_MEM_MAP != 0 {
            let base = read32(info + OFF_MMAP_ADDR) as usize;
            let len = read32(info + OFF_MMAP_LENGTH) as usize;
            let mut entry = base;
            // Each entry: u32 size (of the rest), u64 base, u64 length, u32 type.
            while entry + 24 <= base + len {
                let size = read32(entry) as usize;
                let start = read64(entry + 4);
                let length = read64(entry + 12);
                let kind = match read32(entry + 20) {
                    1 => RegionKind::Available,
                    3 => RegionKind::AcpiReclaimable,
                    other => RegionKind::Reserved(other),
                };
                let region = MemRegion {
                    start,
                    end: start.saturating_add(length),
                    kind,
                };
                if length == 0 {
                    // QEMU ends its map with an empty entry.
                } else if regions.push(region).is_err() {
                    log::warn!("memory map: more than {MAX_REGIONS} entries, ignoring the rest");
                    break;
                }
                entry += size + 4;
            }
        }

        let mut cmdline = String::new();
        if flags & INFO_CMDLINE != 0 {
            let mut p = read32(info + OFF_CMDLINE) as usize;
            loop {
                // SAFETY: a NUL-terminated string the loader wrote.
                let byte = unsafe { (p as *const u8).read() };
                if byte == 0 || !byte.is_ascii() || cmdline.push(char::from(byte)).is_err() {
                    break;
                }
                p += 1;
            }
        }
        Self { regions, cmdline }
    }

    /// Total bytes of RAM the map calls available.
    pub fn available_bytes(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.kind == RegionKind::Available)
            .map(|r| r.end - r.start)
            .sum()
    }

    /// Whether `[start, end)` lies entirely inside one available region.
    pub fn is_available(&self, start: u64, end: u64) -> bool {
        self.regions
            .iter()
            .any(|r| r.kind == RegionKind::Available && r.start <= start && end <= r.end)
    }

    /// Whether the command line holds the word `word` (space-separated).
    pub fn has_option(&self, word: &str) -> bool {
        self.cmdline.split(' ').any(|w| w == word)
    }
}
