//! The consumer half: what a process's vcores run to take messages out of
//! their UCQ. Several vcores may consume one UCQ at once.
//!
//! A consumer claims the slot at `cons_idx` with a compare-and-swap, waits
//! for the producer's `ready`, copies the message and bumps the page's
//! `nr_cons`. A slot past the end of a page means "follow the link": under
//! the consumers' lock one consumer moves `cons_idx` to the next page, waits
//! until every claimed slot of the old page was consumed (`nr_cons` reaching
//! [`NR_MSG_PER_PAGE`]), and offers the old page back to the producer as
//! the spare, returning any previous spare to the host.
//!
//! This side trusts the queue: it runs in the process that owns it. A page
//! address found in the queue is dereferenced directly, as user code does.
//!
//! Known property of the design (kept from the original): a consumer stalled
//! between reading `cons_idx` and its compare-and-swap for a whole page
//! cycle may find the same page and slot again and claim it while the queue
//! is empty; it then waits for the next message, which is still delivered
//! exactly once. Only liveness of that one consumer is affected. A batch
//! claim ([`try_recv_batch`]) stalled the same way may claim up to the rest
//! of that page and wait for it to fill.
//!
//! [`try_recv_batch`] claims a run of slots with one compare-and-swap: the
//! head's cache line is shared with producers' `prod_idx` (the ABI puts
//! both indices side by side), so draining in batches is what makes the
//! consumer side fast.

use core::fmt;

use vcpd_abi::sync::Ordering;
use vcpd_abi::ucq::{NR_MSG_PER_PAGE, PAGE_OFFSET_MASK};
use vcpd_abi::{EventMsg, MsgContainer, Slot, Ucq, UcqPage, UserLock};

use crate::host::ConsumerHost;

/// The lock-holder token consumers record in `u_lock` (no vcore identity
/// is needed by this implementation; a runtime with one may record it).
const CONSUMER_TOKEN: u32 = 0;

/// Why [`init`] refused its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// A page address is null or not page-aligned.
    BadPage(usize),
    /// Both pages are the same page.
    SamePage,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPage(p) => write!(f, "UCQ page {p:#x} is null or not page-aligned"),
            Self::SamePage => f.write_str("UCQ first page and spare page are the same"),
        }
    }
}

impl core::error::Error for InitError {}

/// Sets up `ucq` with two zeroed, page-aligned pages of the process: the
/// first page both indices start on, and the spare for the first switch.
/// The queue becomes ready (producers stop dropping) when this returns.
/// Call it before any producer or consumer uses the queue.
pub fn init(ucq: &Ucq, first_page: usize, spare_page: usize) -> Result<(), InitError> {
    for p in [first_page, spare_page] {
        if p == 0 || p & PAGE_OFFSET_MASK != 0 {
            return Err(InitError::BadPage(p));
        }
    }
    if first_page == spare_page {
        return Err(InitError::SamePage);
    }
    ucq.prod_idx.store(first_page, Ordering::Relaxed);
    ucq.cons_idx.store(first_page, Ordering::Relaxed);
    ucq.spare_pg.store(spare_page, Ordering::Relaxed);
    ucq.nr_extra_pgs.store(0, Ordering::Relaxed);
    ucq.prod_overflow.store(false, Ordering::Relaxed);
    UserLock(&ucq.u_lock).init();
    // Release: a producer that sees `ucq_ready` sees everything above.
    ucq.ucq_ready.store(true, Ordering::Release);
    Ok(())
}

/// Whether the queue looks empty now. Producers may add a message right
/// after this returns `true`.
pub fn is_empty(ucq: &Ucq) -> bool {
    ucq.cons_idx.load(Ordering::Acquire) == ucq.prod_idx.load(Ordering::Acquire)
}

/// Takes one message, or returns `None` if the queue is empty.
///
/// May spin (calling `host.relax()`) while a producer finishes the message
/// in the claimed slot or another consumer finishes the old page.
pub fn try_recv<H: ConsumerHost + ?Sized>(ucq: &Ucq, host: &H) -> Option<EventMsg> {
    let mut msg = [EventMsg::default()];
    (try_recv_batch(ucq, host, &mut msg) == 1).then_some(msg[0])
}

/// Takes up to `out.len()` messages in queue order with one claim, and
/// returns how many (0 if the queue is empty). Draining in batches touches
/// the head's cache line (which producers also hammer) once per batch
/// rather than once per message.
///
/// A batch never spans a page and never claims past `prod_idx`, so every
/// claimed slot was already claimed by a producer; like [`try_recv`], it
/// waits for those producers to finish writing.
pub fn try_recv_batch<H: ConsumerHost + ?Sized>(
    ucq: &Ucq,
    host: &H,
    out: &mut [EventMsg],
) -> usize {
    if out.is_empty() {
        return 0;
    }
    let (first, n) = loop {
        let idx = ucq.cons_idx.load(Ordering::Acquire);
        let prod = ucq.prod_idx.load(Ordering::Acquire);
        if idx == prod {
            return 0;
        }
        let slot = Slot(idx);
        if !slot.is_good() {
            advance_page(ucq, host);
            continue;
        }
        // Slots producers have claimed on this page: up to `prod_idx` when
        // it is on the same page (capped at the page's end: overflowing
        // producers push it past); the whole page once a producer has linked
        // the next one (it does so only after every slot here was taken).
        // With `prod_idx` on another page and no link yet, we may be ahead
        // of it (we followed the link of the previous page before the
        // switching producer published the new page in `prod_idx`): take
        // one slot, as the single-slot algorithm does. (Found by the loom
        // model.)
        let end = if Slot(prod).page() == slot.page() {
            Slot(prod).index().min(NR_MSG_PER_PAGE)
        } else if page(slot.page())
            .header
            .cons_next_pg
            .load(Ordering::Acquire)
            != 0
        {
            NR_MSG_PER_PAGE
        } else {
            slot.index() + 1
        };
        // At least one: a consumer that finds itself ahead of `prod_idx`
        // (the stalled-consumer case in the module docs) claims one slot and
        // waits for it, as the single-slot algorithm does.
        let n = end.saturating_sub(slot.index()).clamp(1, out.len());
        // AcqRel: acquire the page switch that published `idx`; a failed
        // CAS just retries.
        if ucq
            .cons_idx
            .compare_exchange_weak(idx, idx + n, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            break (slot, n);
        }
    };
    for (i, msg) in out.iter_mut().take(n).enumerate() {
        let container = container(Slot(first.0 + i));
        // Acquire pairs with the producer's release of `ready`: the message
        // is complete once we see it set.
        while !container.ready.load(Ordering::Acquire) {
            host.relax();
        }
        *msg = container.ev_msg.read();
        container.ready.store(false, Ordering::Relaxed);
    }
    // Release: the page's recycler (acquire on `nr_cons`) sees our reads of
    // the messages and our clearing of `ready` completed before it reuses it.
    page(first.page())
        .header
        .nr_cons
        .fetch_add(n, Ordering::Release);
    n
}

/// `cons_idx` ran off its page: move every consumer to the next page and
/// recycle the old one. Serialised by the consumers' lock.
fn advance_page<H: ConsumerHost + ?Sized>(ucq: &Ucq, host: &H) {
    let lock = UserLock(&ucq.u_lock);
    lock.lock(CONSUMER_TOKEN, |_| host.relax());
    let idx = ucq.cons_idx.load(Ordering::Acquire);
    // Someone else may have fixed it while we waited for the lock; and an
    // empty queue has nothing to follow yet.
    if Slot(idx).is_good() || idx == ucq.prod_idx.load(Ordering::Acquire) {
        lock.unlock();
        return;
    }
    let old = page(Slot(idx).page());
    // prod_idx != cons_idx, so a producer is past this page and will link
    // the next one; wait for it. Acquire pairs with its release of the link.
    let next = loop {
        let n = old.header.cons_next_pg.load(Ordering::Acquire);
        if n != 0 {
            break n;
        }
        host.relax();
    };
    debug_assert_eq!(
        next & PAGE_OFFSET_MASK,
        0,
        "the kernel links page-aligned pages"
    );
    // From here new consumers claim slots of the next page.
    ucq.cons_idx.store(next, Ordering::Release);
    // Wait until every slot claimed on the old page has been consumed.
    // Acquire pairs with each consumer's release increment.
    while old.header.nr_cons.load(Ordering::Acquire) < NR_MSG_PER_PAGE {
        host.relax();
    }
    old.header.cons_next_pg.store(0, Ordering::Relaxed);
    old.header.nr_cons.store(0, Ordering::Relaxed);
    // Release: the producer that takes this spare sees the reset page.
    let previous = ucq.spare_pg.swap(Slot(idx).page(), Ordering::AcqRel);
    if previous != 0 {
        host.free_page(previous);
        ucq.nr_extra_pgs.fetch_sub(1, Ordering::Relaxed);
    }
    lock.unlock();
}

fn page(addr: usize) -> &'static UcqPage {
    // SAFETY: consumers run in the process that owns the queue; page
    // addresses in it were set by the process itself (`init`) or linked by
    // the kernel after checking them as this process's pages, and pages are
    // only unmapped through `ConsumerHost::free_page` once no slot of them
    // can be claimed. `UcqPage` is all atomics, so concurrent writers do not
    // invalidate the reference.
    unsafe { &*core::ptr::with_exposed_provenance::<UcqPage>(addr) }
}

fn container(slot: Slot) -> &'static MsgContainer {
    &page(slot.page()).msgs[slot.index()]
}
