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
//! exactly once. Only liveness of that one consumer is affected.

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
    let slot = loop {
        let idx = ucq.cons_idx.load(Ordering::Acquire);
        if idx == ucq.prod_idx.load(Ordering::Acquire) {
            return None;
        }
        if !Slot(idx).is_good() {
            advance_page(ucq, host);
            continue;
        }
        // AcqRel: acquire the page switch that published `idx`; release
        // nothing in particular, but a failed CAS just retries.
        if ucq
            .cons_idx
            .compare_exchange_weak(idx, idx + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            break Slot(idx);
        }
    };
    let container = container(slot);
    // Acquire pairs with the producer's release of `ready`: the message is
    // complete once we see it set.
    while !container.ready.load(Ordering::Acquire) {
        host.relax();
    }
    let msg = container.ev_msg.read();
    container.ready.store(false, Ordering::Relaxed);
    // Release: the page's recycler (acquire on `nr_cons`) sees our read of
    // the message and our clearing of `ready` completed before it reuses it.
    page(slot.page())
        .header
        .nr_cons
        .fetch_add(1, Ordering::Release);
    Some(msg)
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
