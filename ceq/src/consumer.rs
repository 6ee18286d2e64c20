//! The consumer half: what a process's vcores run to take coalesced events
//! out of their CEQ. Several vcores may consume one CEQ at once.
//!
//! Normal path: claim the next ring slot (`cons_pvt_idx`), wait for the
//! producer's index in it, reset the slot, then publish the consumption by
//! advancing `cons_pub_idx` in claim order. The index names an entry whose
//! coalesced value is swapped out.
//!
//! Overflow path: when the ring is empty but a producer flagged an
//! overflow (or a recovery scan is unfinished), one consumer at a time (the
//! user lock) scans `events[last_recovered..=max_event_ever]`, returning
//! the first posted entry and leaving `last_recovered` for the next
//! consumer to resume from. `is_empty` stays false until the scan ends.
//!
//! A [`Consumer`] holds the events array and the ring as slices: the one
//! [`init`] returns borrows the arrays it set the queue up with, and
//! [`Consumer::new`] (for a queue found in shared memory) rebuilds them from
//! the addresses in the queue under an `unsafe` promise that they are the
//! process's own memory (`vcpd_abi::umem`). Either way the arrays' extent
//! is fixed when the handle is made: every index read from shared memory
//! (ring entries, `max_event_ever`, the claim counters) is bounds-checked
//! against the slices, and a `ring_sz` that is 0 or not a power of two
//! makes the ring unusable (consumers fall back to the overflow scan), so a
//! process that corrupts its own queue cannot make this side read outside
//! its arrays or panic, in any build.

use core::fmt;

use vcpd_abi::sync::{AtomicI32, Ordering};
use vcpd_abi::{CEQ_EMPTY_SLOT, Ceq, CeqEvent, CeqOp, EventMsg, UserLock};

/// What the consumer needs from the process's runtime.
pub trait ConsumerHost {
    /// Called in every iteration of a spin-wait (a producer finishing a ring
    /// slot, an earlier consumer publishing its slot, the user lock).
    fn relax(&self) {
        vcpd_abi::sync::spin_loop();
    }

    /// The vcore this consumer runs on, recorded as the holder of the
    /// consumers' lock (`u_lock`, Akaros's `spin_pdr_lock` encoding). Must
    /// not be `0xffffffff` (the unlocked value). Default: 0.
    fn vcore_id(&self) -> u32 {
        0
    }
}

/// The simplest host: spin with the CPU's pause hint.
#[derive(Debug, Default, Clone, Copy)]
pub struct Spin;

impl ConsumerHost for Spin {}

/// Why [`init`] refused its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The ring size is zero, not a power of two, or larger than 2^31.
    BadRingSize(u32),
    /// More events than the ring's `i32` indices can name.
    TooManyEvents(usize),
    /// An array pointer is null.
    NullArray,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRingSize(n) => write!(f, "CEQ ring size {n} is not a power of two"),
            Self::TooManyEvents(n) => write!(f, "CEQ with {n} events: indices must fit an i32"),
            Self::NullArray => f.write_str("CEQ events or ring array is null"),
        }
    }
}

impl core::error::Error for InitError {}

/// Sets `ceq` up over the process's `events` array and `ring`: entries
/// cleared, every ring slot empty, indices zero, the consumers' lock
/// unlocked (`0xffffffff`; zeroed memory would read as held by vcore 0).
/// Call before any producer or consumer uses the queue. The returned
/// [`Consumer`] borrows the arrays, so it cannot outlive them.
///
/// # Safety
/// The queue records the arrays' addresses in shared memory, where no
/// lifetime reaches: the kernel writes through them, and [`Consumer::new`]
/// may rebuild them, for as long as the queue is in use, not just for
/// `'q`. So `ceq`, `events` and `ring` must be the process's own memory
/// (`vcpd_abi::umem`) that stays allocated, and is used for nothing else,
/// until the queue is torn down (no producer or consumer uses it again).
pub unsafe fn init<'q>(
    ceq: &'q Ceq,
    op: CeqOp,
    events: &'q [CeqEvent],
    ring: &'q [AtomicI32],
) -> Result<Consumer<'q>, InitError> {
    let ring_sz = u32::try_from(ring.len()).unwrap_or(0);
    if !ring_sz.is_power_of_two() || ring_sz > 1 << 31 {
        return Err(InitError::BadRingSize(ring_sz));
    }
    let nr_events = u32::try_from(events.len())
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or(InitError::TooManyEvents(events.len()))?;
    if events.is_empty() {
        return Err(InitError::NullArray);
    }
    for e in events {
        e.coalesce.store(0, Ordering::Relaxed);
        e.blob_data.store(0, Ordering::Relaxed);
        e.idx_posted.store(false, Ordering::Relaxed);
    }
    for slot in ring {
        slot.store(CEQ_EMPTY_SLOT, Ordering::Relaxed);
    }
    ceq.events
        .store(events.as_ptr().expose_provenance(), Ordering::Relaxed);
    ceq.nr_events.store(nr_events, Ordering::Relaxed);
    ceq.last_recovered.store(0, Ordering::Relaxed);
    ceq.max_event_ever.store(0, Ordering::Relaxed);
    ceq.ring
        .store(ring.as_ptr().expose_provenance(), Ordering::Relaxed);
    ceq.operation.store(op as u8, Ordering::Relaxed);
    ceq.ring_overflowed.store(false, Ordering::Relaxed);
    ceq.overflow_recovery.store(false, Ordering::Relaxed);
    ceq.prod_idx.store(0, Ordering::Relaxed);
    ceq.cons_pub_idx.store(0, Ordering::Relaxed);
    ceq.cons_pvt_idx.store(0, Ordering::Relaxed);
    UserLock(&ceq.u_lock).init();
    // Release: whoever reads the size after this sees a set-up queue.
    ceq.ring_sz.store(ring_sz, Ordering::Release);
    Ok(Consumer { ceq, events, ring })
}

/// Whether the queue holds nothing now: the ring is empty, no overflow is
/// flagged and no recovery scan is unfinished or starting. Reads only the
/// head: safe on any `Ceq`.
pub fn is_empty(ceq: &Ceq) -> bool {
    // Order matters: a consumer starting a recovery sets `overflow_recovery`
    // before it clears `ring_overflowed` (an RMW), so reading the overflow
    // flag first can never see both clear while a scan is pending.
    ring_is_empty(ceq)
        && !ceq.ring_overflowed.load(Ordering::Acquire)
        && !ceq.overflow_recovery.load(Ordering::Acquire)
        && !UserLock(&ceq.u_lock).is_locked()
}

/// The consumer half of one CEQ: the queue head plus its events array and
/// ring, as slices whose extent was fixed when the handle was made. Any
/// number of vcores may hold one for the same queue at once.
#[derive(Clone, Copy, Debug)]
pub struct Consumer<'q> {
    ceq: &'q Ceq,
    events: &'q [CeqEvent],
    /// Empty when the queue's `ring_sz` was not a power of two.
    ring: &'q [AtomicI32],
}

impl<'q> Consumer<'q> {
    /// A consumer of a queue that was already set up (by [`init`] or by C
    /// code with the same layout), its arrays rebuilt from the addresses
    /// and sizes the queue holds now. A `ring_sz` that is 0 or not a power
    /// of two leaves the handle without a ring (it then finds events only
    /// by the overflow scan); a null `events` leaves it without events.
    ///
    /// # Safety
    /// For `'q`, `ceq`, `events[0..nr_events]` and `ring[0..ring_sz]` (as
    /// the queue holds them now) must be the process's own memory
    /// (`vcpd_abi::umem`): allocated, suitably aligned, and used for
    /// nothing but this queue.
    pub unsafe fn new(ceq: &'q Ceq) -> Self {
        let base = ceq.events.load(Ordering::Relaxed);
        let len = ceq.nr_events.load(Ordering::Relaxed) as usize;
        let events: &'q [CeqEvent] = if base == 0 {
            &[]
        } else {
            // SAFETY: the caller promised `events[0..nr_events]` is the
            // process's own memory for `'q`; `CeqEvent` is all atomics, so
            // producers writing concurrently keep the slice valid.
            unsafe { core::slice::from_raw_parts(core::ptr::with_exposed_provenance(base), len) }
        };
        let ring_base = ceq.ring.load(Ordering::Relaxed);
        let sz = ceq.ring_sz.load(Ordering::Acquire);
        let ring: &'q [AtomicI32] = if ring_base == 0 || !sz.is_power_of_two() {
            &[]
        } else {
            // SAFETY: as for `events`, for `ring[0..ring_sz]`.
            unsafe {
                core::slice::from_raw_parts(
                    core::ptr::with_exposed_provenance(ring_base),
                    sz as usize,
                )
            }
        };
        Self { ceq, events, ring }
    }

    /// The queue.
    pub fn queue(&self) -> &'q Ceq {
        self.ceq
    }

    /// Whether the queue holds nothing now ([`is_empty`]).
    pub fn is_empty(&self) -> bool {
        is_empty(self.ceq)
    }

    /// Takes one coalesced event, or `None` if the queue looks empty.
    ///
    /// The message carries the entry index in `ev_type`, the coalesced
    /// value in `ev_arg2` (low 32 bits, as the C ABI has it) and in full in
    /// `ev_arg4`, and the last blob in `ev_arg3`. A message may carry 0 when
    /// a concurrent consumer took the value first; that is expected.
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
    pub fn try_recv<H: ConsumerHost + ?Sized>(&self, host: &H) -> Option<EventMsg> {
        let ceq = self.ceq;
        loop {
            // A ring entry whose event was already taken (by a scan or
            // another consumer) yields nothing: look again, the ring shrank
            // by one.
            while let Some(idx) = self.take_ring_index(host) {
                if let Some(msg) = self.extract(idx) {
                    return Some(msg);
                }
            }
            if !ceq.ring_overflowed.load(Ordering::Acquire)
                && !ceq.overflow_recovery.load(Ordering::Acquire)
            {
                return None;
            }
            if let Some(msg) = self.recover(host) {
                return Some(msg);
            }
            // A scan just finished empty-handed. Events raised meanwhile are
            // in the ring or flagged by a new overflow: look again before
            // saying "empty". Each further round needs a new overflow by a
            // producer.
        }
    }

    /// The ring slot for claim position `pos`. The mask keeps it in bounds
    /// for any ring length; an empty ring (bad `ring_sz`) has no slots.
    fn ring_slot(&self, pos: usize) -> Option<&'q AtomicI32> {
        self.ring.get(pos & self.ring.len().wrapping_sub(1))
    }

    /// Claims the next ring slot and returns the index in it, or `None` if
    /// the ring is empty (or unusable).
    fn take_ring_index<H: ConsumerHost + ?Sized>(&self, host: &H) -> Option<i32> {
        let ceq = self.ceq;
        if self.ring.is_empty() {
            return None;
        }
        let pvt = loop {
            // `cons_pvt_idx` first: `prod_idx` read after it is at least as
            // large as it was then, so a slot below it is one a producer has
            // reserved. Read the other way round (as the C original does),
            // other consumers can move `cons_pvt_idx` past a stale
            // `prod_idx` and this one claims a slot no producer has
            // reserved, then waits for it (forever, once producers stop).
            // Found by the stress test; the loom model
            // `consumers_never_claim_past_the_producers` pins it.
            let pvt = ceq.cons_pvt_idx.load(Ordering::Acquire);
            let prod = ceq.prod_idx.load(Ordering::Acquire);
            if prod == pvt {
                return None;
            }
            if ceq
                .cons_pvt_idx
                .compare_exchange_weak(
                    pvt,
                    pvt.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                break pvt;
            }
        };
        // Present: the ring is non-empty and the mask keeps `pvt` inside it.
        let slot = self.ring_slot(pvt)?;
        // The producer that reserved this slot is writing it; acquire pairs
        // with its release store of the index.
        let idx = loop {
            let v = slot.load(Ordering::Acquire);
            if v != CEQ_EMPTY_SLOT {
                break v;
            }
            host.relax();
        };
        slot.store(CEQ_EMPTY_SLOT, Ordering::Relaxed);
        // Hand slots back to producers in order: wait for the consumers that
        // claimed earlier slots, then publish ours. Release makes our reset
        // of the slot visible to the producer that reuses it.
        while ceq.cons_pub_idx.load(Ordering::Acquire) != pvt {
            host.relax();
        }
        ceq.cons_pub_idx
            .store(pvt.wrapping_add(1), Ordering::Release);
        Some(idx)
    }

    /// Takes the coalesced value of `events[idx]` if its `idx_posted` is
    /// set.
    fn extract(&self, idx: i32) -> Option<EventMsg> {
        let entry = self.events.get(usize::try_from(idx).ok()?)?;
        if !entry.idx_posted.load(Ordering::Acquire) {
            return None;
        }
        // Clear first: a producer coalescing after our swap below then sees
        // the flag clear and posts the index again, so nothing it adds is
        // stranded.
        entry.idx_posted.store(false, Ordering::Relaxed);
        // AcqRel: the swap is ordered after the store above (release) for
        // any producer whose RMW reads from it; see the producer.
        let value = entry.coalesce.swap(0, Ordering::AcqRel);
        let blob = entry.blob_data.swap(0, Ordering::Relaxed);
        Some(EventMsg {
            ev_type: idx as u16,
            ev_arg1: 0,
            ev_arg2: value as u32,
            ev_arg3: blob as usize,
            ev_arg4: value as u64,
        })
    }

    /// The overflow scan, resumable across consumers through
    /// `last_recovered`.
    fn recover<H: ConsumerHost + ?Sized>(&self, host: &H) -> Option<EventMsg> {
        let ceq = self.ceq;
        let lock = UserLock(&ceq.u_lock);
        lock.lock(host.vcore_id(), |_| host.relax());
        if !ceq.overflow_recovery.load(Ordering::Relaxed) {
            // Start a scan. Announce it before clearing the overflow (see
            // `is_empty`); the acquire swap makes every event flagged before
            // the overflow was raised visible to the scan below.
            ceq.overflow_recovery.store(true, Ordering::Relaxed);
            ceq.ring_overflowed.swap(false, Ordering::AcqRel);
            ceq.last_recovered.store(0, Ordering::Relaxed);
        }
        let max = ceq
            .max_event_ever
            .load(Ordering::Acquire)
            .min(self.events.len().saturating_sub(1));
        let mut i = ceq.last_recovered.load(Ordering::Relaxed) as usize;
        while i <= max {
            ceq.last_recovered.store(i as u32 + 1, Ordering::Relaxed);
            if let Some(msg) = self.extract(i as i32) {
                lock.unlock();
                return Some(msg);
            }
            i += 1;
        }
        // Scanned to the end. Events raised after the scan started are in
        // the ring or flagged by a new overflow, which the next call
        // handles.
        ceq.overflow_recovery.store(false, Ordering::Release);
        lock.unlock();
        None
    }
}

fn ring_is_empty(ceq: &Ceq) -> bool {
    // Same order as the claim: private index first.
    let pvt = ceq.cons_pvt_idx.load(Ordering::Acquire);
    ceq.prod_idx.load(Ordering::Acquire) == pvt
}
