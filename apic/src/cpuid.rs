//! Feature detection: CPUID leaf 1, ECX.
//!
//! Decoding is a pure function of the ECX value so it is tested on the host;
//! [`CpuFeatures::detect`] runs the instruction (x86_64 only).

/// The CPU features the driver depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuFeatures {
    /// CPUID.1:ECX bit 21: the local APIC supports x2APIC mode.
    pub x2apic: bool,
    /// CPUID.1:ECX bit 24: the APIC timer supports TSC-deadline mode.
    pub tsc_deadline: bool,
}

impl CpuFeatures {
    /// CPUID.1:ECX bit of x2APIC support.
    pub const X2APIC_BIT: u32 = 21;
    /// CPUID.1:ECX bit of TSC-deadline timer support.
    pub const TSC_DEADLINE_BIT: u32 = 24;

    /// Decodes CPUID leaf 1's ECX.
    pub const fn from_leaf1_ecx(ecx: u32) -> Self {
        Self {
            x2apic: ecx & (1 << Self::X2APIC_BIT) != 0,
            tsc_deadline: ecx & (1 << Self::TSC_DEADLINE_BIT) != 0,
        }
    }

    /// Runs CPUID leaf 1 on the current CPU.
    ///
    /// Safe: CPUID exists on every x86_64 CPU and leaf 1 always does. The
    /// answer is per CPU in principle; the kernel should call this (through
    /// [`LocalApic::enable_current_cpu`](crate::LocalApic::enable_current_cpu))
    /// on each CPU rather than trusting the BSP's.
    #[cfg(target_arch = "x86_64")]
    pub fn detect() -> Self {
        // `__cpuid` is a safe function on recent toolchains and an unsafe
        // one on the workspace's minimum (1.85); the block serves both.
        #[allow(unused_unsafe)]
        // SAFETY: CPUID is available on every x86_64 processor and leaf 1
        // is always implemented; the instruction has no side effects.
        let leaf1 = unsafe { core::arch::x86_64::__cpuid(1) };
        Self::from_leaf1_ecx(leaf1.ecx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bits_21_and_24() {
        assert_eq!(CpuFeatures::from_leaf1_ecx(0), CpuFeatures::default());
        assert_eq!(
            CpuFeatures::from_leaf1_ecx(0x0020_0000),
            CpuFeatures {
                x2apic: true,
                tsc_deadline: false
            }
        );
        assert_eq!(
            CpuFeatures::from_leaf1_ecx(0x0100_0000),
            CpuFeatures {
                x2apic: false,
                tsc_deadline: true
            }
        );
        // A leaf-1 ECX like QEMU `-cpu qemu64`'s (SSE3, CX16, hypervisor):
        // no x2APIC.
        assert!(!CpuFeatures::from_leaf1_ecx(0x8000_2001).x2apic);
        assert!(CpuFeatures::from_leaf1_ecx(!0).x2apic);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn detect_runs_on_the_host() {
        // Only that it executes; the answer depends on the machine.
        let _ = CpuFeatures::detect();
    }
}
