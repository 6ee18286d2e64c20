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
//! This side trusts the queue: it runs in the process that owns it, and a
//! page address found in the queue is dereferenced directly, as user code
//! does. That trust is claimed once, by the `unsafe` constructors of
//! [`Consumer`] ([`init`], [`Consumer::new`]), whose contract is that the
//! queue and its pages are the process's own memory (defined in
//! `vcpd_abi::umem`). With a `Consumer` in hand every call is safe.
//!
//! A claim touches no page before the compare-and-swap on `cons_idx` that
//! confirms it (as in Akaros): until then the page may already have been
//! recycled by another consumer and unmapped by the runtime. The page
//! switch reads the old page only under the consumers' lock, after
//! re-reading `cons_idx`: only the lock holder recycles a page.
//!
//! Known property of the design (kept from the original): consumers may
//! claim ahead of the producers. A switching producer links the new page
//! before it publishes it in `prod_idx`, so one consumer can follow the
//! link, another claim slot 0 (the switcher's), and a third read the old
//! `prod_idx`, take itself to be behind, and claim slot 1 before any
//! producer has; it then waits until a producer fills it. Likewise, a consumer stalled
//! between reading `cons_idx` and its compare-and-swap for a whole page
//! cycle may find the same page and slot again and claim it while the queue
//! is empty; it then waits for the next message, which is still delivered
//! exactly once. Only liveness of that one consumer is affected. A batch
//! claim ([`Consumer::try_recv_batch`]) stalled the same way may claim up to the rest
//! of that page and wait for it to fill.
//!
//! [`Consumer::try_recv_batch`] claims a run of slots (up to the end of its
//! page) with one compare-and-swap: the head's cache line is shared with
//! producers' `prod_idx` (the ABI puts both indices side by side), and every
//! claim takes that line from the producers, who need it back for their next
//! fetch-and-add. Draining in batches is what makes the consumer side fast;
//! one claim per message costs up to a cache-line round trip between the
//! cores per message while producers are sending.

use core::fmt;

use vcpd_abi::sync::Ordering;
use vcpd_abi::ucq::{NR_MSG_PER_PAGE, PAGE_OFFSET_MASK};
use vcpd_abi::{EventMsg, MsgContainer, Slot, Ucq, UcqPage, UserLock};

use crate::host::ConsumerHost;

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
/// The consumers' lock starts unlocked (`0xffffffff`: zeroed memory would
/// read as held by vcore 0), and the queue becomes ready (producers stop
/// dropping) when this returns. Call it before any producer or consumer
/// uses the queue; the returned [`Consumer`] takes messages out.
///
/// # Safety
/// `first_page` and `spare_page` must be distinct pages of the process's
/// own memory (`vcpd_abi::umem`, "the process's own memory") that nothing
/// else uses, and `ucq` must be in the process's own memory: from now on
/// the queue owns the pages and follows the page addresses it holds, as
/// [`Consumer::new`] describes, for as long as any consumer of it runs.
/// The checks below only catch null, unaligned or equal addresses.
pub unsafe fn init(
    ucq: &Ucq,
    first_page: usize,
    spare_page: usize,
) -> Result<Consumer<'_>, InitError> {
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
    Ok(Consumer { ucq })
}

/// Whether the queue looks empty now. Producers may add a message right
/// after this returns `true`. Reads only the head: safe on any `Ucq`.
pub fn is_empty(ucq: &Ucq) -> bool {
    ucq.cons_idx.load(Ordering::Acquire) == ucq.prod_idx.load(Ordering::Acquire)
}

/// The consumer half of one UCQ in the process's own memory: the handle
/// whose construction carries the promise that the page addresses in the
/// queue may be followed. Any number of vcores may hold one for the same
/// queue at once.
#[derive(Clone, Copy, Debug)]
pub struct Consumer<'q> {
    ucq: &'q Ucq,
}

impl<'q> Consumer<'q> {
    /// A consumer of a queue that was already set up (by [`init`] or by C
    /// code with the same layout).
    ///
    /// # Safety
    /// For `'q`, `ucq` and every page the queue names — `cons_idx`'s page,
    /// each page's `cons_next_pg`, `spare_pg` — must be the process's own
    /// memory (`vcpd_abi::umem`): pages that stay mapped until this crate
    /// hands them to [`ConsumerHost::free_page`]. The process's consumers
    /// (this crate) and a kernel producer that checks every page it links
    /// (`ucq::send`) keep it so; code that writes those fields otherwise
    /// breaks the promise.
    pub unsafe fn new(ucq: &'q Ucq) -> Self {
        Self { ucq }
    }

    /// The queue.
    pub fn queue(&self) -> &'q Ucq {
        self.ucq
    }

    /// Whether the queue looks empty now ([`is_empty`]).
    pub fn is_empty(&self) -> bool {
        is_empty(self.ucq)
    }

    /// Takes one message, or returns `None` if the queue is empty.
    ///
    /// May spin (calling `host.relax()`) while a producer finishes the
    /// message in the claimed slot or another consumer finishes the old page.
    ///
    /// ```
    /// use ucq::{ArenaHost, UcqStats, UserPageAlloc};
    /// use vcpd_abi::{EventMsg, Ucq, UserMemoryExt};
    ///
    /// let host = ArenaHost::new(1 << 20);
    /// let q: &Ucq = host.user_ref(host.arena.alloc(size_of::<Ucq>(), 64).unwrap()).unwrap();
    /// let (a, b) = (host.alloc_user_page().unwrap(), host.alloc_user_page().unwrap());
    /// // SAFETY: two fresh pages of the process, used for nothing else.
    /// let consumer = unsafe { ucq::init(q, a, b) }.unwrap();
    /// assert!(consumer.try_recv(&host).is_none());
    /// ucq::send(q, &EventMsg::new(5), &host, &UcqStats::new()).unwrap();
    /// assert_eq!(consumer.try_recv(&host).map(|m| m.ev_type), Some(5));
    /// ```
    pub fn try_recv<H: ConsumerHost + ?Sized>(&self, host: &H) -> Option<EventMsg> {
        let (slot, _) = self.claim(host, 1)?;
        let mut msg = [EventMsg::default()];
        take(host, slot, &mut msg);
        Some(msg[0])
    }

    /// Takes up to `out.len()` messages in queue order and returns how
    /// many (0 if the queue is empty). Each claim of a run of slots is one
    /// compare-and-swap on the head, whose cache line producers also need
    /// for every message: draining in batches takes that line from them
    /// once per batch rather than once per message.
    ///
    /// A claim never spans a page and never claims past `prod_idx`, so
    /// every claimed slot was already claimed by a producer; like
    /// [`try_recv`](Self::try_recv), it waits for those producers to finish.
    /// A claim that reaches the end of its page is followed by one on the
    /// next page, so a return short of `out.len()` means the claim found no
    /// more messages published: the caller has drained the queue (for
    /// now), as it would learn from a `0` with one more call.
    pub fn try_recv_batch<H: ConsumerHost + ?Sized>(
        &self,
        host: &H,
        out: &mut [EventMsg],
    ) -> usize {
        let mut got = 0;
        while let Some(rest) = out.get_mut(got..).filter(|r| !r.is_empty()) {
            let Some((first, n)) = self.claim(host, rest.len()) else {
                break;
            };
            take(host, first, &mut rest[..n]);
            got += n;
            // Short of the page's end: the claim stopped at `prod_idx`.
            if first.index() + n < NR_MSG_PER_PAGE {
                break;
            }
        }
        got
    }

    /// Claims up to `max` (> 0) slots on one page: the first and how many,
    /// or `None` if the queue is empty.
    fn claim<H: ConsumerHost + ?Sized>(&self, host: &H, max: usize) -> Option<(Slot, usize)> {
        let ucq = self.ucq;
        loop {
            let idx = ucq.cons_idx.load(Ordering::Acquire);
            let prod = ucq.prod_idx.load(Ordering::Acquire);
            if idx == prod {
                return None;
            }
            let slot = Slot(idx);
            if !slot.is_good() {
                self.advance_page(host);
                continue;
            }
            // How far producers have claimed on this page, from the two
            // indices alone (no page may be read before our claim):
            // - `prod_idx` on the same page: up to it (capped at the page's
            //   end: overflowing producers push it past);
            // - `prod_idx` good on another page: a producer left this page
            //   after every slot on it was claimed (a later page's slots
            //   are published in `prod_idx` only after the switch), so the
            //   whole page;
            // - `prod_idx` bad on another page: we may be ahead of it (we
            //   followed the link before the switching producer published
            //   the new page; it owns slot 0 there). Take one slot, as the
            //   single-slot algorithm does. (Found by the loom model.)
            let end = if Slot(prod).page() == slot.page() {
                Slot(prod).index().min(NR_MSG_PER_PAGE)
            } else if Slot(prod).is_good() {
                NR_MSG_PER_PAGE
            } else {
                slot.index() + 1
            };
            // At least one: a consumer that finds itself ahead of
            // `prod_idx` (the stalled-consumer case in the module docs)
            // claims one slot and waits for it, as the single-slot
            // algorithm does.
            let n = end.saturating_sub(slot.index()).clamp(1, max);
            // AcqRel: acquire the page switch that published `idx`; a
            // failed CAS just retries.
            if ucq
                .cons_idx
                .compare_exchange_weak(idx, idx + n, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some((slot, n));
            }
        }
    }

    /// `cons_idx` ran off its page: move every consumer to the next page
    /// and recycle the old one. Serialised by the consumers' lock. (Out of
    /// line: once per page, and the claim's fast path stays small.)
    #[cold]
    #[inline(never)]
    fn advance_page<H: ConsumerHost + ?Sized>(&self, host: &H) {
        let ucq = self.ucq;
        let lock = UserLock(&ucq.u_lock);
        lock.lock(host.vcore_id(), |_| host.relax());
        let idx = ucq.cons_idx.load(Ordering::Acquire);
        // Someone else may have fixed it while we waited for the lock; and
        // an empty queue has nothing to follow yet.
        if Slot(idx).is_good() || idx == ucq.prod_idx.load(Ordering::Acquire) {
            lock.unlock();
            return;
        }
        // Under the lock, with `cons_idx` still on it: only the lock holder
        // recycles a page, so this one is still ours to read.
        let old = page(Slot(idx).page());
        // prod_idx != cons_idx, so a producer is past this page and will
        // link the next one; wait for it. Acquire pairs with its release of
        // the link.
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
        // Consumers may touch the next page from here (model bookkeeping).
        #[cfg(loom)]
        vcpd_abi::sync::poison::let_in(next, core::mem::size_of::<UcqPage>());
        // From here new consumers claim slots of the next page.
        ucq.cons_idx.store(next, Ordering::Release);
        // Wait until every slot claimed on the old page has been consumed.
        // Acquire pairs with each consumer's release increment.
        while old.header.nr_cons.load(Ordering::Acquire) < NR_MSG_PER_PAGE {
            host.relax();
        }
        old.header.cons_next_pg.store(0, Ordering::Relaxed);
        old.header.nr_cons.store(0, Ordering::Relaxed);
        // The page is the producer's again: under loom, a consumer that
        // touches it before following a link to it fails the model.
        #[cfg(loom)]
        vcpd_abi::sync::poison::keep_out(Slot(idx).page(), core::mem::size_of::<UcqPage>());
        // Release: the producer that takes this spare sees the reset page.
        let previous = ucq.spare_pg.swap(Slot(idx).page(), Ordering::AcqRel);
        if previous != 0 {
            host.free_page(previous);
            ucq.nr_extra_pgs.fetch_sub(1, Ordering::Relaxed);
        }
        lock.unlock();
    }
}

/// Copies out the `out.len()` messages of the claimed slots from `first`
/// on (one page) and counts them consumed on their page.
fn take<H: ConsumerHost + ?Sized>(host: &H, first: Slot, out: &mut [EventMsg]) {
    // Claimed: the page cannot be recycled before our `nr_cons` increment
    // below, so from here on it may be touched.
    for (i, msg) in out.iter_mut().enumerate() {
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
    // the messages and our clearing of `ready` completed before it reuses
    // it.
    page(first.page())
        .header
        .nr_cons
        .fetch_add(out.len(), Ordering::Release);
}

/// The page at `addr`. Private: only a [`Consumer`] (whose constructor
/// promised that the queue's page addresses are the process's own memory)
/// calls it, and only for a page it has claimed a slot of or holds the lock
/// for.
fn page<'q>(addr: usize) -> &'q UcqPage {
    // Under loom, a page the model's host has freed, or that consumers
    // handed back to the producer, is poisoned: touching it fails the model.
    #[cfg(loom)]
    vcpd_abi::sync::poison::check(addr, core::mem::size_of::<UcqPage>());
    // SAFETY: `Consumer::new`'s contract: page addresses in the queue are
    // the process's own memory and stay mapped until handed to
    // `ConsumerHost::free_page`, which happens only once no slot of them
    // can be claimed (and the callers touch a page only after a confirmed
    // claim or under the lock). `UcqPage` is all atomics, so concurrent
    // writers do not invalidate the reference.
    unsafe { &*core::ptr::with_exposed_provenance::<UcqPage>(addr) }
}

fn container<'q>(slot: Slot) -> &'q MsgContainer {
    &page::<'q>(slot.page()).msgs[slot.index()]
}
