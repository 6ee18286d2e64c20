//! Event messages and event types.

use core::fmt;

use crate::sync::{AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// No event.
pub const EV_NONE: u16 = 0;
/// A preemption of this vcore is coming.
pub const EV_PREEMPT_PENDING: u16 = 1;
/// A gang preemption is coming.
pub const EV_GANG_PREEMPT_PENDING: u16 = 2;
/// A vcore was preempted; `ev_arg2` names it.
pub const EV_VCORE_PREEMPT: u16 = 3;
/// A gang-scheduled vcore set came back.
pub const EV_GANG_RETURN: u16 = 4;
/// A user-level IPI.
pub const EV_USER_IPI: u16 = 5;
/// A page fault to handle in user space.
pub const EV_PAGE_FAULT: u16 = 6;
/// An alarm fired.
pub const EV_ALARM: u16 = 7;
/// Indirection: `ev_arg3` carries the user address of the event queue to look at.
pub const EV_EVENT: u16 = 8;
/// Test event.
pub const EV_FREE_APPLE_PIE: u16 = 9;
/// A system call completed.
pub const EV_SYSCALL: u16 = 10;
/// Check your messages.
pub const EV_CHECK_MSGS: u16 = 11;
/// A POSIX signal; `ev_arg1` is the signal number.
pub const EV_POSIX_SIGNAL: u16 = 12;
/// One more than the largest statically assigned event type.
pub const NR_EVENT_TYPES: u16 = 25;
/// Event types reserved for dynamic assignment.
pub const MAX_NR_DYN_EVENT: u16 = 25;
/// Bound on every event type: `kernel_evts` and bitmaps have this many entries.
pub const MAX_NR_EVENT: usize = (NR_EVENT_TYPES + MAX_NR_DYN_EVENT) as usize;

/// An event message: 24 bytes, the unit every mailbox carries.
///
/// `ev_arg3` is pointer-sized; for [`EV_EVENT`] it is the user address of an
/// event queue. It is a plain integer here because it is a *user* address,
/// meaningless to dereference without a check.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventMsg {
    /// Event type: one of the `EV_*` constants or a dynamic type below [`MAX_NR_EVENT`].
    pub ev_type: u16,
    /// First argument.
    pub ev_arg1: u16,
    /// Second argument (the value a CEQ coalesces).
    pub ev_arg2: u32,
    /// Third, pointer-sized argument.
    pub ev_arg3: usize,
    /// Fourth argument.
    pub ev_arg4: u64,
}

impl EventMsg {
    /// A message of type `ev_type` with all arguments zero.
    pub const fn new(ev_type: u16) -> Self {
        Self {
            ev_type,
            ev_arg1: 0,
            ev_arg2: 0,
            ev_arg3: 0,
            ev_arg4: 0,
        }
    }

    /// The message with `ev_arg1` set.
    #[must_use]
    pub const fn with_arg1(mut self, v: u16) -> Self {
        self.ev_arg1 = v;
        self
    }

    /// The message with `ev_arg2` set.
    #[must_use]
    pub const fn with_arg2(mut self, v: u32) -> Self {
        self.ev_arg2 = v;
        self
    }

    /// The message with `ev_arg3` set.
    #[must_use]
    pub const fn with_arg3(mut self, v: usize) -> Self {
        self.ev_arg3 = v;
        self
    }

    /// The message with `ev_arg4` set.
    #[must_use]
    pub const fn with_arg4(mut self, v: u64) -> Self {
        self.ev_arg4 = v;
        self
    }

    /// The type decoded, if it is one of the statically known ones.
    pub fn known_type(&self) -> Result<EventType, UnknownEventType> {
        EventType::try_from(self.ev_type)
    }
}

/// An [`EventMsg`] as it sits in shared memory: each field an atomic, so a
/// concurrent writer never makes a read undefined behaviour.
///
/// Field accesses are relaxed: whoever publishes a message orders it with a
/// separate flag (the UCQ container's `ready`).
#[repr(C)]
#[derive(Debug)]
pub struct SharedEventMsg {
    /// See [`EventMsg::ev_type`].
    pub ev_type: AtomicU16,
    /// See [`EventMsg::ev_arg1`].
    pub ev_arg1: AtomicU16,
    /// See [`EventMsg::ev_arg2`].
    pub ev_arg2: AtomicU32,
    /// See [`EventMsg::ev_arg3`].
    pub ev_arg3: AtomicUsize,
    /// See [`EventMsg::ev_arg4`].
    pub ev_arg4: AtomicU64,
}

impl SharedEventMsg {
    /// A zeroed message.
    pub fn new() -> Self {
        Self {
            ev_type: AtomicU16::new(0),
            ev_arg1: AtomicU16::new(0),
            ev_arg2: AtomicU32::new(0),
            ev_arg3: AtomicUsize::new(0),
            ev_arg4: AtomicU64::new(0),
        }
    }

    /// Copies the message out, field by field (relaxed).
    #[inline]
    pub fn read(&self) -> EventMsg {
        EventMsg {
            ev_type: self.ev_type.load(Ordering::Relaxed),
            ev_arg1: self.ev_arg1.load(Ordering::Relaxed),
            ev_arg2: self.ev_arg2.load(Ordering::Relaxed),
            ev_arg3: self.ev_arg3.load(Ordering::Relaxed),
            ev_arg4: self.ev_arg4.load(Ordering::Relaxed),
        }
    }

    /// Copies `msg` in, field by field (relaxed).
    #[inline]
    pub fn write(&self, msg: &EventMsg) {
        self.ev_type.store(msg.ev_type, Ordering::Relaxed);
        self.ev_arg1.store(msg.ev_arg1, Ordering::Relaxed);
        self.ev_arg2.store(msg.ev_arg2, Ordering::Relaxed);
        self.ev_arg3.store(msg.ev_arg3, Ordering::Relaxed);
        self.ev_arg4.store(msg.ev_arg4, Ordering::Relaxed);
    }
}

impl Default for SharedEventMsg {
    fn default() -> Self {
        Self::new()
    }
}

/// The statically known event types.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is documented on its `EV_*` constant
pub enum EventType {
    None = EV_NONE,
    PreemptPending = EV_PREEMPT_PENDING,
    GangPreemptPending = EV_GANG_PREEMPT_PENDING,
    VcorePreempt = EV_VCORE_PREEMPT,
    GangReturn = EV_GANG_RETURN,
    UserIpi = EV_USER_IPI,
    PageFault = EV_PAGE_FAULT,
    Alarm = EV_ALARM,
    Event = EV_EVENT,
    FreeApplePie = EV_FREE_APPLE_PIE,
    Syscall = EV_SYSCALL,
    CheckMsgs = EV_CHECK_MSGS,
    PosixSignal = EV_POSIX_SIGNAL,
}

/// A `u16` that is not one of the [`EventType`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEventType(pub u16);

impl fmt::Display for UnknownEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown event type {}", self.0)
    }
}

impl core::error::Error for UnknownEventType {}

impl TryFrom<u16> for EventType {
    type Error = UnknownEventType;

    fn try_from(v: u16) -> Result<Self, Self::Error> {
        Ok(match v {
            EV_NONE => Self::None,
            EV_PREEMPT_PENDING => Self::PreemptPending,
            EV_GANG_PREEMPT_PENDING => Self::GangPreemptPending,
            EV_VCORE_PREEMPT => Self::VcorePreempt,
            EV_GANG_RETURN => Self::GangReturn,
            EV_USER_IPI => Self::UserIpi,
            EV_PAGE_FAULT => Self::PageFault,
            EV_ALARM => Self::Alarm,
            EV_EVENT => Self::Event,
            EV_FREE_APPLE_PIE => Self::FreeApplePie,
            EV_SYSCALL => Self::Syscall,
            EV_CHECK_MSGS => Self::CheckMsgs,
            EV_POSIX_SIGNAL => Self::PosixSignal,
            other => return Err(UnknownEventType(other)),
        })
    }
}

impl From<EventType> for u16 {
    fn from(t: EventType) -> u16 {
        t as u16
    }
}
