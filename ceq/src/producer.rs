//! The producer half: what a kernel runs to post an event into a CEQ in an
//! untrusted process's memory.
//!
//! The event's value is coalesced into `events[ev_type]` first; only then
//! is the index offered to the ring, and only if the entry is not already
//! marked `idx_posted`. A full ring (or losing the reservation race ten
//! times) sets `ring_overflowed`, which makes consumers scan the array: the
//! value is never lost, only found more slowly. Every loop here is bounded.

use core::fmt;

use vcpd_abi::sync::{AtomicI32, Ordering};
use vcpd_abi::{Ceq, CeqEvent, CeqOp, EventMsg, UserMemory, UserMemoryExt};

use crate::stats::{CeqStats, bump};

/// Tries at reserving a ring slot before declaring an overflow.
pub const NR_RING_TRIES: usize = 10;
/// Tries at raising `max_event_ever` before giving up. Only a process that
/// keeps writing the field itself can make the compare-and-swap fail this often.
pub const NR_MAX_EVENT_TRIES: usize = 32;

/// What a successful send did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// Coalesced, and the index was posted to the ring.
    Ring,
    /// Coalesced into an entry already in (or on its way to) the ring.
    AlreadyPosted,
    /// Coalesced, but the ring was full: consumers will find it by scanning.
    Overflowed,
}

/// Why an event was not delivered. Each is that event's loss alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// `ev_type` is not below the queue's `nr_events`.
    OutOfRange {
        /// The event type sent.
        ev_type: u16,
        /// The queue's size.
        nr_events: u32,
    },
    /// The entry `events[ev_type]` is not writable user memory.
    BadEvent(usize),
    /// The coalescing operation is neither OR nor ADD.
    UnknownOp(u8),
    /// The ring is not `ring_sz` (a non-zero power of two) entries of
    /// writable user memory. Found before anything is written.
    BadRing {
        /// The ring's user address.
        addr: usize,
        /// Its claimed size.
        ring_sz: u32,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { ev_type, nr_events } => {
                write!(f, "CEQ too small: event {ev_type}, nr_events {nr_events}")
            }
            Self::BadEvent(a) => write!(f, "CEQ event entry {a:#x} is not user memory"),
            Self::UnknownOp(op) => write!(f, "CEQ has unknown operation {op}"),
            Self::BadRing { addr, ring_sz } => write!(
                f,
                "CEQ ring {addr:#x} of {ring_sz} entries is not a power-of-two array in user memory"
            ),
        }
    }
}

impl core::error::Error for SendError {}

/// Posts `msg` into `ceq`: coalesces `ev_arg2` into `events[ev_type]`
/// with the queue's operation, stores `ev_arg3` as the blob, and makes
/// sure a consumer will look at the entry.
///
/// `ceq` must already have been checked as user memory; the events array
/// and ring it points at are checked here. Never panics; every loop is bounded.
///
/// ```
/// use ceq::{CeqStats, Spin};
/// use ucq::ArenaHost;
/// use vcpd_abi::sync::AtomicI32;
/// use vcpd_abi::{Ceq, CeqEvent, CeqOp, EventMsg, UserMemoryExt};
///
/// let host = ArenaHost::new(1 << 20);
/// let q: &Ceq = host.user_ref(host.arena.alloc(size_of::<Ceq>(), 8).unwrap()).unwrap();
/// let events = host.arena.alloc_slice::<CeqEvent>(8).unwrap();
/// let ring = host.arena.alloc_slice::<AtomicI32>(4).unwrap();
/// // SAFETY: the queue and its arrays are the process's own memory, kept
/// // for as long as the queue is used.
/// let consumer = unsafe { ceq::init(q, CeqOp::Add, events, ring) }.unwrap();
///
/// // Three posts to event 2 coalesce into one entry.
/// let stats = CeqStats::new();
/// for v in [1, 2, 3] {
///     ceq::send(q, &EventMsg::new(2).with_arg2(v), &host, &stats).unwrap();
/// }
/// let got = consumer.try_recv(&Spin).unwrap();
/// assert_eq!((got.ev_type, got.ev_arg2), (2, 6));
/// assert!(consumer.try_recv(&Spin).is_none());
/// ```
pub fn send<M: UserMemory + ?Sized>(
    ceq: &Ceq,
    msg: &EventMsg,
    mem: &M,
    stats: &CeqStats,
) -> Result<Posted, SendError> {
    let result = post(ceq, msg, mem, stats);
    match result {
        Ok(Posted::Ring) => bump(&stats.ring_posts),
        Ok(Posted::AlreadyPosted) => bump(&stats.already_posted),
        Ok(Posted::Overflowed) => bump(&stats.overflows),
        Err(e) => {
            bump(match e {
                SendError::OutOfRange { .. } => &stats.dropped_out_of_range,
                SendError::UnknownOp(_) => &stats.dropped_bad_op,
                SendError::BadEvent(_) | SendError::BadRing { .. } => &stats.dropped_bad_addr,
            });
        }
    }
    result
}

fn post<M: UserMemory + ?Sized>(
    ceq: &Ceq,
    msg: &EventMsg,
    mem: &M,
    stats: &CeqStats,
) -> Result<Posted, SendError> {
    let nr_events = ceq.nr_events.load(Ordering::Relaxed);
    let idx = usize::from(msg.ev_type);
    if idx >= nr_events as usize {
        return Err(SendError::OutOfRange {
            ev_type: msg.ev_type,
            nr_events,
        });
    }
    let op = ceq.operation.load(Ordering::Relaxed);
    let op = CeqOp::try_from(op).map_err(|_| SendError::UnknownOp(op))?;
    // Read the array pointer once: a second read could see a new, unchecked one.
    let events = ceq.events.load(Ordering::Relaxed);
    let entry = mem
        .user_elem::<CeqEvent>(events, idx)
        .ok_or(SendError::BadEvent(
            events.wrapping_add(idx.wrapping_mul(size_of::<CeqEvent>())),
        ))?;
    // The ring, checked whole before anything is written: a bad ring found
    // only after coalescing and posting would strand the value in an entry
    // marked posted that no consumer looks for. Size and address are read
    // once; the slot index below is masked into this same checked slice.
    let ring_addr = ceq.ring.load(Ordering::Relaxed);
    let ring_sz = ceq.ring_sz.load(Ordering::Relaxed);
    let bad_ring = SendError::BadRing {
        addr: ring_addr,
        ring_sz,
    };
    if !ring_sz.is_power_of_two() {
        return Err(bad_ring);
    }
    let ring = mem
        .user_slice::<AtomicI32>(ring_addr, ring_sz as usize)
        .ok_or(bad_ring)?;
    raise_max_event(ceq, idx, stats);
    // The blob is last-writer-wins with no ordering promise; write it first.
    entry.blob_data.store(msg.ev_arg3 as u64, Ordering::Relaxed);
    let value = msg.ev_arg2 as usize;
    // AcqRel: these read-modify-writes and the consumer's swap of
    // `coalesce` are totally ordered. If the consumer's swap came first, our
    // RMW reads from it (release) and we then see its `idx_posted = false`
    // below; if ours came first, its swap takes our value. Either way the
    // value reaches a consumer.
    match op {
        CeqOp::Or => entry.coalesce.fetch_or(value, Ordering::AcqRel),
        CeqOp::Add => entry.coalesce.fetch_add(value, Ordering::AcqRel),
    };
    if entry.idx_posted.load(Ordering::Acquire) {
        // A consumer will still look at this entry (the flag is cleared only
        // right before a consumer swaps `coalesce` out).
        return Ok(Posted::AlreadyPosted);
    }
    // Set before posting: a consumer taking the index from the ring must
    // find the flag (it extracts only flagged entries), and an overflow
    // scan must find it too.
    entry.idx_posted.store(true, Ordering::Release);
    // Present: `ring` is the non-empty, power-of-two slice checked above,
    // and the mask keeps the slot inside it.
    let cell =
        reserve_ring_slot(ceq, ring.len()).and_then(|slot| ring.get(slot & (ring.len() - 1)));
    let Some(cell) = cell else {
        // Release: a consumer that clears this flag (acquire swap) sees our
        // `idx_posted` and `max_event_ever` updates before it scans.
        ceq.ring_overflowed.store(true, Ordering::Release);
        return Ok(Posted::Overflowed);
    };
    // Release pairs with the consumer's acquire spin on the slot.
    cell.store(i32::from(msg.ev_type), Ordering::Release);
    Ok(Posted::Ring)
}

/// Raises `max_event_ever` to at least `idx` (bound of the overflow scan).
fn raise_max_event(ceq: &Ceq, idx: usize, stats: &CeqStats) {
    let mut cur = ceq.max_event_ever.load(Ordering::Relaxed);
    for _ in 0..NR_MAX_EVENT_TRIES {
        if idx <= cur {
            return;
        }
        // Release: a consumer that acquires the overflow flag sees this.
        match ceq.max_event_ever.compare_exchange_weak(
            cur,
            idx,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(now) => cur = now,
        }
    }
    bump(&stats.max_event_contention);
}

/// Reserves a ring slot by compare-and-swap on `prod_idx`, or `None` when
/// the ring (of the `ring_sz` the caller checked) is full or the race was lost [`NR_RING_TRIES`] times.
fn reserve_ring_slot(ceq: &Ceq, ring_sz: usize) -> Option<usize> {
    for _ in 0..NR_RING_TRIES {
        let prod = ceq.prod_idx.load(Ordering::Acquire);
        // Acquire pairs with the consumers' release of `cons_pub_idx`: the
        // slot they handed back has been reset to empty.
        let cons_pub = ceq.cons_pub_idx.load(Ordering::Acquire);
        // `>=` rather than `==`: garbage indices count as full, not as room.
        if prod.wrapping_sub(cons_pub) >= ring_sz {
            return None;
        }
        if ceq
            .prod_idx
            .compare_exchange(
                prod,
                prod.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return Some(prod);
        }
    }
    None
}
