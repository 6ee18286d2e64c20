//! The process-wide handler table: several handlers per event type, fixed
//! capacity, no allocator.

use core::fmt;

use heapless::Vec;
use vcpd_abi::{EV_EVENT, EventMsg, MAX_NR_EVENT};

use super::Receiver;

/// A handler: called with the receiver (to drain more, recover other
/// vcores...), the vcore running it, the message, and the `data` word
/// registered with it.
pub type HandlerFn<R> = fn(rx: &Receiver<'_, R>, vcoreid: u32, msg: &EventMsg, data: usize);

/// A registered handler and its data word.
pub struct Handler<R> {
    /// The function.
    pub func: HandlerFn<R>,
    /// Passed back to `func` on every call.
    pub data: usize,
}

impl<R> Clone for Handler<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Handler<R> {}

impl<R> fmt::Debug for Handler<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Handler({:#x}, data {:#x})",
            self.func as usize, self.data
        )
    }
}

impl<R> PartialEq for Handler<R> {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::fn_addr_eq(self.func, other.func) && self.data == other.data
    }
}

/// Why a handler could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The type is not below `MAX_NR_EVENT`.
    BadType(u16),
    /// The type already has [`HANDLERS_PER_TYPE`] handlers.
    Full(u16),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadType(t) => write!(f, "event type {t} is not below {MAX_NR_EVENT}"),
            Self::Full(t) => write!(f, "event type {t} has no free handler slot"),
        }
    }
}

impl core::error::Error for RegisterError {}

/// Handlers per event type a [`HandlerTable`] holds.
pub const HANDLERS_PER_TYPE: usize = 8;

/// Up to [`HANDLERS_PER_TYPE`] handlers for each event type. Registration
/// takes a write lock (rare, at set-up); dispatch copies the type's handlers
/// out under a read lock and calls them unlocked, so handlers may
/// (de)register handlers.
pub struct HandlerTable<R> {
    table: spin::RwLock<[Vec<Handler<R>, HANDLERS_PER_TYPE>; MAX_NR_EVENT]>,
}

impl<R> fmt::Debug for HandlerTable<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.table.read();
        f.debug_map()
            .entries(t.iter().enumerate().filter(|(_, v)| !v.is_empty()))
            .finish()
    }
}

impl<R: super::VcoreRuntime> HandlerTable<R> {
    /// A table with only the indirection handler, on [`EV_EVENT`].
    pub fn new() -> Self {
        let table = Self {
            table: spin::RwLock::new(core::array::from_fn(|_| Vec::new())),
        };
        let indir = Handler {
            func: super::handle_indir as HandlerFn<R>,
            data: 0,
        };
        table.table.write()[usize::from(EV_EVENT)]
            .push(indir)
            .unwrap_or_else(|_| unreachable!("an empty slot has room"));
        table
    }

    /// Adds `func` (with `data`) to the handlers of `ev_type`.
    pub fn register(
        &self,
        ev_type: u16,
        func: HandlerFn<R>,
        data: usize,
    ) -> Result<(), RegisterError> {
        let mut t = self.table.write();
        let slot = t
            .get_mut(usize::from(ev_type))
            .ok_or(RegisterError::BadType(ev_type))?;
        slot.push(Handler { func, data })
            .map_err(|_| RegisterError::Full(ev_type))
    }

    /// Removes the first registration of `func` with `data`; `true` if found.
    pub fn deregister(&self, ev_type: u16, func: HandlerFn<R>, data: usize) -> bool {
        let mut t = self.table.write();
        let Some(slot) = t.get_mut(usize::from(ev_type)) else {
            return false;
        };
        let h = Handler { func, data };
        match slot.iter().position(|x| *x == h) {
            Some(i) => {
                slot.remove(i);
                true
            }
            None => false,
        }
    }

    /// The handlers of `ev_type` (a copy); empty for an out-of-range type.
    pub fn handlers(&self, ev_type: u16) -> Vec<Handler<R>, HANDLERS_PER_TYPE> {
        self.table
            .read()
            .get(usize::from(ev_type))
            .cloned()
            .unwrap_or_default()
    }
}

impl<R: super::VcoreRuntime> Default for HandlerTable<R> {
    fn default() -> Self {
        Self::new()
    }
}
