//! The process-wide handler table: several handlers per event type, fixed
//! capacity, no allocator.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use heapless::Vec;
use vcpd_abi::{EV_EVENT, EventMsg, MAX_NR_EVENT};

use super::Receiver;
use crate::ids::VcoreId;

/// A handler: called with the receiver (to drain more, recover other
/// vcores...), the vcore running it, the message, and the `data` word
/// registered with it.
pub type HandlerFn<R> = fn(rx: &Receiver<'_, R>, vcoreid: VcoreId, msg: &EventMsg, data: usize);

/// A registered handler and its data word.
pub struct Handler<R> {
    /// The function.
    pub func: HandlerFn<R>,
    /// Passed back to `func` on every call.
    pub data: usize,
    id: u32,
}

/// Names one registration, for [`HandlerTable::deregister`]. (Function
/// pointers cannot name it: Rust does not promise that two pointers to the
/// same function compare equal.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandlerId {
    ev_type: u16,
    id: u32,
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

/// Why a handler could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The type is not below `MAX_NR_EVENT`.
    BadType(u16),
    /// The type already has [`HANDLERS_PER_TYPE`] handlers.
    Full(u16),
    /// The same function with the same data is already registered for
    /// this type (it would run twice per message).
    Duplicate(u16),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadType(t) => write!(f, "event type {t} is not below {MAX_NR_EVENT}"),
            Self::Full(t) => write!(f, "event type {t} has no free handler slot"),
            Self::Duplicate(t) => write!(
                f,
                "this handler is already registered for event type {t} with the same data"
            ),
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
    next_id: AtomicU32,
    /// Queues `handle_events` services too (see `watch.rs`).
    pub(super) watched: super::watch::WatchList,
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
            next_id: AtomicU32::new(0),
            watched: super::watch::WatchList::new(),
        };
        table
            .register(EV_EVENT, super::handle_indir as HandlerFn<R>, 0)
            .unwrap_or_else(|_| unreachable!("an empty slot has room"));
        table
    }

    /// Adds `func` (with `data`) to the handlers of `ev_type`, after the
    /// ones already there (the built-in indirection handler is the first on
    /// [`EV_EVENT`]).
    pub fn register(
        &self,
        ev_type: u16,
        func: HandlerFn<R>,
        data: usize,
    ) -> Result<HandlerId, RegisterError> {
        let mut t = self.table.write();
        let slot = t
            .get_mut(usize::from(ev_type))
            .ok_or(RegisterError::BadType(ev_type))?;
        // Function addresses are not unique in Rust (identical functions may
        // be merged); a false match can only be two identical functions
        // with the same data, which would behave the same anyway.
        if slot
            .iter()
            .any(|h| core::ptr::fn_addr_eq(h.func, func) && h.data == data)
        {
            return Err(RegisterError::Duplicate(ev_type));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        slot.push(Handler { func, data, id })
            .map_err(|_| RegisterError::Full(ev_type))?;
        Ok(HandlerId { ev_type, id })
    }

    /// Removes a registration; `false` if it was already gone.
    pub fn deregister(&self, handler: HandlerId) -> bool {
        let mut t = self.table.write();
        let Some(slot) = t.get_mut(usize::from(handler.ev_type)) else {
            return false;
        };
        match slot.iter().position(|h| h.id == handler.id) {
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
