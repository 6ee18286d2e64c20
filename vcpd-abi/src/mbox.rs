//! The event mailbox: a type tag and a union of the three mailbox bodies.

use core::fmt;

use crate::ceq::Ceq;
use crate::evbitmap::EvBitmap;
use crate::sync::{AtomicI32, Ordering};
use crate::ucq::Ucq;

/// Tag of a UCQ mailbox.
pub const EV_MBOX_UCQ: i32 = 1;
/// Tag of a bitmap mailbox.
pub const EV_MBOX_BITMAP: i32 = 2;
/// Tag of a CEQ mailbox.
pub const EV_MBOX_CEQ: i32 = 3;

/// The mailbox types.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MboxType {
    /// Unbounded concurrent queue of full messages.
    Ucq = EV_MBOX_UCQ,
    /// Bitmap of event types.
    Bitmap = EV_MBOX_BITMAP,
    /// Coalescing event queue.
    Ceq = EV_MBOX_CEQ,
}

/// An `i32` that is not a [`MboxType`] tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownMboxType(pub i32);

impl fmt::Display for UnknownMboxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown mailbox type {}", self.0)
    }
}

impl core::error::Error for UnknownMboxType {}

impl TryFrom<i32> for MboxType {
    type Error = UnknownMboxType;

    fn try_from(v: i32) -> Result<Self, Self::Error> {
        match v {
            EV_MBOX_UCQ => Ok(Self::Ucq),
            EV_MBOX_BITMAP => Ok(Self::Bitmap),
            EV_MBOX_CEQ => Ok(Self::Ceq),
            other => Err(UnknownMboxType(other)),
        }
    }
}

/// The three bodies share storage, as in C. Every variant is made only of
/// atomics, so any bytes are a valid value of any variant: reading the
/// "wrong" variant yields meaningless numbers, never undefined behaviour.
#[cfg(not(loom))]
#[repr(C)]
union MboxBody {
    ucq: core::mem::ManuallyDrop<Ucq>,
    evbm: core::mem::ManuallyDrop<EvBitmap>,
    ceq: core::mem::ManuallyDrop<Ceq>,
}

/// Under loom the bodies cannot overlap (loom atomics are handles, not
/// bytes), so the model keeps all three side by side.
#[cfg(loom)]
#[repr(C)]
struct MboxBody {
    ucq: Ucq,
    evbm: EvBitmap,
    ceq: Ceq,
}

/// An event mailbox (`struct event_mbox`).
#[repr(C)]
pub struct EventMbox {
    /// The type tag: [`EV_MBOX_UCQ`], [`EV_MBOX_BITMAP`] or [`EV_MBOX_CEQ`].
    pub mbox_type: AtomicI32,
    body: MboxBody,
}

/// A mailbox body, viewed according to its tag.
#[derive(Clone, Copy, Debug)]
pub enum MboxRef<'a> {
    /// A UCQ.
    Ucq(&'a Ucq),
    /// An event bitmap.
    Bitmap(&'a EvBitmap),
    /// A CEQ.
    Ceq(&'a Ceq),
}

impl EventMbox {
    /// A zeroed mailbox (type 0: not yet set up).
    pub fn new() -> Self {
        #[cfg(not(loom))]
        let body = MboxBody {
            ceq: core::mem::ManuallyDrop::new(Ceq::default()),
        };
        #[cfg(loom)]
        let body = MboxBody {
            ucq: Ucq::default(),
            evbm: EvBitmap::default(),
            ceq: Ceq::default(),
        };
        Self {
            mbox_type: AtomicI32::new(0),
            body,
        }
    }

    /// The tag, decoded. The other party may change it at any time: the
    /// answer is a snapshot.
    pub fn kind(&self) -> Result<MboxType, UnknownMboxType> {
        MboxType::try_from(self.mbox_type.load(Ordering::Acquire))
    }

    /// Reads the tag once and returns the matching view of the body, or an
    /// error for a tag that names no mailbox type.
    pub fn body(&self) -> Result<MboxRef<'_>, UnknownMboxType> {
        Ok(match self.kind()? {
            MboxType::Ucq => MboxRef::Ucq(self.as_ucq()),
            MboxType::Bitmap => MboxRef::Bitmap(self.as_evbitmap()),
            MboxType::Ceq => MboxRef::Ceq(self.as_ceq()),
        })
    }

    /// The body viewed as a UCQ, whatever the tag says (for set-up code).
    pub fn as_ucq(&self) -> &Ucq {
        #[cfg(not(loom))]
        {
            // SAFETY: every union variant consists solely of atomics, valid
            // for any bytes, and starts at offset 0 of the union.
            unsafe { &self.body.ucq }
        }
        #[cfg(loom)]
        {
            &self.body.ucq
        }
    }

    /// The body viewed as an event bitmap, whatever the tag says.
    pub fn as_evbitmap(&self) -> &EvBitmap {
        #[cfg(not(loom))]
        {
            // SAFETY: as in `as_ucq`.
            unsafe { &self.body.evbm }
        }
        #[cfg(loom)]
        {
            &self.body.evbm
        }
    }

    /// The body viewed as a CEQ, whatever the tag says.
    pub fn as_ceq(&self) -> &Ceq {
        #[cfg(not(loom))]
        {
            // SAFETY: as in `as_ucq`.
            unsafe { &self.body.ceq }
        }
        #[cfg(loom)]
        {
            &self.body.ceq
        }
    }
}

impl Default for EventMbox {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EventMbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("EventMbox");
        d.field("mbox_type", &self.mbox_type.load(Ordering::Relaxed));
        match self.body() {
            Ok(MboxRef::Ucq(u)) => d.field("ucq", u),
            Ok(MboxRef::Bitmap(b)) => d.field("evbm", b),
            Ok(MboxRef::Ceq(c)) => d.field("ceq", c),
            Err(_) => d.field("body", &".."),
        };
        d.finish()
    }
}
