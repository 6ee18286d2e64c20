//! Event-queue flags and VCPD flags, with the exact bit values of the ABI.
//!
//! Both are read from memory the process writes. Conversions use
//! `from_bits_retain`, so unknown bits survive a round trip, and code only
//! ever asks about the bits it knows: an unknown bit changes nothing.

use bitflags::bitflags;

bitflags! {
    /// How the kernel delivers events sent to an event queue (`ev_flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    #[repr(transparent)]
    pub struct EvqFlags: u32 {
        /// Interrupt (notify) the chosen vcore.
        const IPI = 0x001;
        /// Spam the message itself to public VCPD mailboxes; ignore `ev_mbox`.
        const SPAM_PUBLIC = 0x002;
        /// After posting, send an indirection (`EV_EVENT`) naming this queue.
        const INDIR = 0x004;
        /// With no `ev_mbox`, use the vcore's private VCPD mailbox.
        const VCORE_PRIVATE = 0x008;
        /// Spam the indirection so it reaches some vcore that will run.
        const SPAM_INDIR = 0x010;
        /// Spammed messages must reach a vcore that is running now.
        const VCORE_MUST_RUN = 0x020;
        /// Send every indirection (no throttling on `ev_alert_pending`).
        const NOTHROTTLE = 0x040;
        /// Pick the vcore round-robin, storing the choice in `ev_vcore`.
        const ROUNDROBIN = 0x080;
        /// Prefer the vcore the kernel suggests over `ev_vcore`.
        const VCORE_APPRO = 0x100;
        /// Wake the process if it is WAITING.
        const WAKEUP = 0x200;
    }
}

impl EvqFlags {
    /// Decodes a raw `ev_flags` value, keeping unknown bits.
    #[inline]
    pub const fn from_raw(raw: i32) -> Self {
        Self::from_bits_retain(raw as u32)
    }

    /// The raw `ev_flags` value.
    #[inline]
    pub const fn to_raw(self) -> i32 {
        self.bits() as i32
    }
}

bitflags! {
    /// VCPD `flags`: updated atomically by kernel and process.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    #[repr(transparent)]
    pub struct VcpdFlags: usize {
        /// The kernel is CASing on this word.
        const K_LOCK = 0x001;
        /// The vcore is preempted.
        const PREEMPTED = 0x002;
        /// The vcore will look at its public mailbox: spammed messages may go here.
        const CAN_RCV_MSG = 0x004;
        /// The current uthread is being stolen by another vcore.
        const UTHREAD_STEALING = 0x008;
        /// An SCP cannot enter vcore context.
        const SCP_NOVCCTX = 0x010;
    }
}

bitflags! {
    /// VCPD `rflags`: racy flags only the vcore's owner updates.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    #[repr(transparent)]
    pub struct VcpdRacyFlags: u32 {
        /// The ancillary (FPU) state holds a valid saved image.
        const FPU_SAVED = 0x1000;
    }
}
