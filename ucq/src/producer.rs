//! The producer half: what a kernel runs to post a message into a UCQ that
//! lives in an untrusted process's memory.
//!
//! Fast path: one fetch-and-add on `prod_idx` claims a slot. When the slot
//! is past the end of its page, the producer sets `prod_overflow` (so others
//! skip the doomed fetch-and-add) and takes the kernel-side lock for this
//! UCQ; under it, whoever finds the slot still bad links a new page (the
//! process's spare, or a fresh one from the host) and restarts `prod_idx` at
//! slot 1 of it, keeping slot 0 for itself. Every producer that takes the
//! lock therefore leaves with a good slot: scribbling on `prod_idx` can make
//! the process lose its own messages, never starve a kernel thread. No loop
//! here depends on a value the process controls.

use core::fmt;

use vcpd_abi::sync::Ordering;
use vcpd_abi::ucq::{NR_MSG_PER_PAGE, PAGE_OFFSET_MASK};
use vcpd_abi::{EventMsg, MsgContainer, Slot, Ucq, UcqPage, UserMemoryExt};

use crate::host::ProducerHost;
use crate::stats::{UcqStats, bump};

/// Why a message was not delivered. Each is that message's loss alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The process has not set the queue up yet (`ucq_ready` clear).
    NotReady,
    /// The container of the claimed slot is not writable user memory.
    BadSlot(usize),
    /// The page being left is not writable user memory.
    BadOldPage(usize),
    /// The spare page the process offered is unaligned or not its memory.
    BadSparePage(usize),
    /// The host could not allocate a page.
    OutOfPages,
    /// A new page was needed but the producers already hold the host's
    /// budget of pages for this process
    /// ([`UserPageAlloc::ucq_page_budget`](crate::UserPageAlloc::ucq_page_budget)).
    PageBudget,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotReady => f.write_str("UCQ not initialised by the process"),
            Self::BadSlot(a) => write!(f, "UCQ slot container {a:#x} is not user memory"),
            Self::BadOldPage(a) => write!(f, "UCQ page {a:#x} is not user memory"),
            Self::BadSparePage(a) => write!(f, "UCQ spare page {a:#x} is not a user page"),
            Self::OutOfPages => f.write_str("no memory for a new UCQ page"),
            Self::PageBudget => f.write_str("UCQ page budget spent; no new page"),
        }
    }
}

impl core::error::Error for SendError {}

/// Posts `msg` into `ucq`.
///
/// `ucq` must already have been checked as user memory (e.g. obtained with
/// [`UserMemoryExt::user_ref`]); every page and container address read from
/// it is checked again here. The caller must have the process's address
/// space current, as `host` requires. Never panics and never loops on a
/// value the process controls; the lock is held only for the page switch.
///
/// ```
/// use ucq::{ArenaHost, UcqStats, UserPageAlloc};
/// use vcpd_abi::{EventMsg, Ucq, UserMemoryExt};
///
/// // A simulated process (its memory) and the kernel's UCQ locks.
/// let host = ArenaHost::new(1 << 20);
/// let q: &Ucq = host.user_ref(host.arena.alloc(size_of::<Ucq>(), 64).unwrap()).unwrap();
/// let (a, b) = (host.alloc_user_page().unwrap(), host.alloc_user_page().unwrap());
/// // SAFETY: two fresh pages of the process, used for nothing else.
/// let consumer = unsafe { ucq::init(q, a, b) }.unwrap();
///
/// let stats = UcqStats::new();
/// for i in 0..300 {
///     // The kernel posts (crossing two page switches).
///     ucq::send(q, &EventMsg::new(3).with_arg2(i), &host, &stats).unwrap();
/// }
/// // The process takes them out, in order.
/// for i in 0..300 {
///     assert_eq!(consumer.try_recv(&host).unwrap().ev_arg2, i);
/// }
/// assert!(consumer.try_recv(&host).is_none());
/// assert_eq!(stats.snapshot().page_switches, 2);
/// ```
pub fn send<H: ProducerHost + ?Sized>(
    ucq: &Ucq,
    msg: &EventMsg,
    host: &H,
    stats: &UcqStats,
) -> Result<(), SendError> {
    let result = claim_slot(ucq, host, stats).and_then(|slot| {
        let container = host.user_ref::<MsgContainer>(slot.container_addr());
        container
            .map(|c| (slot, c))
            .ok_or(SendError::BadSlot(slot.container_addr()))
    });
    match result {
        Ok((slot, container)) => {
            // Nothing can fail from here: count it now. A locked increment
            // after the stores below would wait for them to reach the cache
            // (for the container's line, which the consumer holds, to come
            // over); before them it costs only itself.
            stats.count_posted(host.cpu_index());
            container.ev_msg.write(msg);
            // Publish: the consumer that claimed this slot spins on `ready`
            // and acquire-reads it before copying the message out.
            container.ready.store(true, Ordering::Release);
            prefetch_next_containers(slot, container);
            Ok(())
        }
        Err(e) => {
            match e {
                SendError::NotReady => bump(&stats.dropped_not_ready),
                SendError::OutOfPages => bump(&stats.dropped_no_memory),
                SendError::PageBudget => bump(&stats.dropped_page_budget),
                _ => bump(&stats.dropped_bad_addr),
            }
            // No log here: the caller (event-core) counts and logs each
            // drop once, rate-limited per process.
            Err(e)
        }
    }
}

/// Asks for the next three cache lines of containers of this page, for
/// writing. The next send's fetch-and-add, a locked instruction, waits
/// until this send's stores are in the cache; a container's line was last
/// written by the consumer (which cleared its `ready`) or by a producer on
/// another CPU, so each store waits for a line to come over from another
/// core. Asking for the next lines now overlaps those transfers instead of
/// taking them one per send (measured: 1.3 to 1.7 times the throughput of
/// `benches/ucq.rs`'s threaded cases).
/// Only a hint: it reads and writes nothing, and stays within the page
/// whose container the host checked.
#[inline(always)]
fn prefetch_next_containers(slot: Slot, container: &MsgContainer) {
    let here = (container as *const MsgContainer).cast::<u8>();
    // Container `i` starts 16 + 32 * i bytes into the page: 64 bytes on is
    // the container two slots on, which must exist. (Unrolled: a loop
    // costs more than the prefetches.)
    let room = NR_MSG_PER_PAGE - 1 - slot.index();
    if room >= 6 {
        crate::hint::prefetch_write(here.wrapping_add(64));
        crate::hint::prefetch_write(here.wrapping_add(128));
        crate::hint::prefetch_write(here.wrapping_add(192));
    } else {
        for line in 1..=room / 2 {
            crate::hint::prefetch_write(here.wrapping_add(64 * line));
        }
    }
}

fn claim_slot<H: ProducerHost + ?Sized>(
    ucq: &Ucq,
    host: &H,
    stats: &UcqStats,
) -> Result<Slot, SendError> {
    // Acquire pairs with the consumer's release in `init`: a ready queue's
    // indices and pages are visible.
    if !ucq.ucq_ready.load(Ordering::Acquire) {
        return Err(SendError::NotReady);
    }
    // While someone switches pages, skip the fetch-and-add: it could only
    // fail, and each failure pushes the 12-bit slot counter towards a carry
    // into the page bits.
    if !ucq.prod_overflow.load(Ordering::Relaxed) {
        // AcqRel: acquire the page the last switcher published with its
        // release store of `prod_idx`, so our writes to it come after the
        // reset of its header and containers.
        let slot = Slot(ucq.prod_idx.fetch_add(1, Ordering::AcqRel));
        if slot.is_good() {
            return Ok(slot);
        }
        ucq.prod_overflow.store(true, Ordering::Relaxed);
    }
    bump(&stats.slow_paths);
    host.with_ucq_lock(ucq as *const Ucq as usize, || {
        let result = switch_page(ucq, host, stats);
        // Let fast-path producers back in, whatever happened: on success the
        // new page has room; on failure the next producer retries the switch.
        ucq.prod_overflow.store(false, Ordering::Relaxed);
        result
    })
}

/// Under the lock: claim a slot again (someone may have switched already),
/// or switch to a new page and keep its slot 0.
fn switch_page<H: ProducerHost + ?Sized>(
    ucq: &Ucq,
    host: &H,
    stats: &UcqStats,
) -> Result<Slot, SendError> {
    let slot = Slot(ucq.prod_idx.fetch_add(1, Ordering::AcqRel));
    if slot.is_good() {
        return Ok(slot);
    }
    // The page we are leaving; check it before writing its link.
    let old_addr = slot.page();
    let old_page = host
        .user_ref::<UcqPage>(old_addr)
        .ok_or(SendError::BadOldPage(old_addr))?;
    // Acquire pairs with the consumer's release swap when it recycled the
    // page: its header and `ready` flags were reset before it became spare.
    let spare = ucq.spare_pg.swap(0, Ordering::AcqRel);
    let new_addr = if spare != 0 {
        bump(&stats.spares_used);
        spare
    } else {
        // The process's own count, as in Akaros (which warns past
        // UCQ_WARN_THRESH; here the budget below is the limit that holds).
        ucq.nr_extra_pgs.fetch_add(1, Ordering::Relaxed);
        // The budget is counted in kernel memory: `nr_extra_pgs` above is
        // the process's to scribble on.
        if !stats.charge_page(host.ucq_page_budget()) {
            ucq.nr_extra_pgs.fetch_sub(1, Ordering::Relaxed);
            return Err(SendError::PageBudget);
        }
        match host.alloc_user_page() {
            Some(p) => {
                bump(&stats.pages_allocated);
                p
            }
            None => {
                stats.page_returned();
                ucq.nr_extra_pgs.fetch_sub(1, Ordering::Relaxed);
                return Err(SendError::OutOfPages);
            }
        }
    };
    // The spare comes from the process, and even the host's page is checked:
    // we are about to write to it.
    let new_page = match host.user_ref::<UcqPage>(new_addr) {
        Some(p) if new_addr & PAGE_OFFSET_MASK == 0 => p,
        _ => return Err(SendError::BadSparePage(new_addr)),
    };
    new_page.header.cons_next_pg.store(0, Ordering::Relaxed);
    new_page.header.nr_cons.store(0, Ordering::Relaxed);
    // Release: a consumer that follows the link sees the reset header.
    old_page
        .header
        .cons_next_pg
        .store(new_addr, Ordering::Release);
    // Slot 0 is ours; producers restart at 1. Release publishes the page's
    // reset state to every producer that claims a slot on it.
    ucq.prod_idx
        .store(Slot::new(new_addr, 1).0, Ordering::Release);
    bump(&stats.page_switches);
    Ok(Slot::new(new_addr, 0))
}
