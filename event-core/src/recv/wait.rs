//! Blocking a thread on several event queues: wait for the first message on
//! any of them, with an optional deadline (Akaros's wakeup controllers).
//!
//! A *thread* is the process runtime's unit of execution (a uthread, or in
//! a runtime without threads a vcore); the runtime supplies park, unpark
//! and a clock through [`ThreadRuntime`]. A queue becomes waitable by
//! attaching a [`WaitQueue`] to it ([`attach`]): a small table of the
//! threads waiting on it, reached through the queue's `ev_udata`, with the
//! queue's `ev_handler` set to a handler that unparks them. The queue's
//! alerts are the wakeup path, so any alert that ends in
//! [`Receiver::handle_event_q`] works: an indirection (`INDIR`, with or
//! without `SPAM_INDIR`), handled by the built-in `EV_EVENT` handler, or a
//! bare `IPI` if the queue is *watched* (see
//! [`HandlerTable::watch`](super::HandlerTable::watch)): `handle_events`
//! then services the watched queues after the VCPD mailboxes.
//!
//! # The protocol
//!
//! Waiters never receive pushed messages. An alert wakes *every* thread
//! registered on the queue, and a woken thread claims a message itself by
//! extracting it from the queue's mailbox; UCQ, CEQ and bitmap claims are
//! exactly-once, so each message goes to exactly one thread or stays in
//! its queue. A waiter:
//!
//! 1. looks at its queues once (no registration if one has a message);
//! 2. registers on **all** its queues, then fences (`SeqCst`);
//! 3. looks again; then parks until unparked or its deadline, and repeats
//!    3 after every return from `park` (which may be spurious);
//! 4. on a message or a timeout, deregisters from all its queues.
//!
//! The wakeup handler fences (`SeqCst`), then reads the registrations. A
//! message's alert reaches the handler only after the message is posted,
//! so of the waiter's look (after its fence) and the handler's read (after
//! its fence), one sees the other's write: the waiter finds the message,
//! or the handler finds the registration and unparks the waiter. An unpark
//! that comes before the `park` makes the `park` return ("permit"
//! semantics, as std's), so nothing is lost between the look and the park.
//! Because an alert wakes every registered waiter, a waiter that times out
//! (or takes a message from another queue) after being woken cannot have
//! swallowed a wakeup another waiter needed; a message that arrives while
//! a waiter cancels stays in its queue for the others or the next wait.
//! The loom model `tests/loom_wait.rs` checks these claims.
//!
//! # What wakes whom
//!
//! - `INDIR | SPAM_INDIR`: the indirection reaches a vcore that will run,
//!   so every message leads to a wakeup.
//! - `INDIR` alone, or `IPI` alone on a watched queue: the alert goes to
//!   the queue's chosen vcore only, as for any handler; if that vcore does
//!   not run (it yielded), the waiter finds the message at its next look
//!   (a deadline bounds the wait).
//! - A queue with neither: no alert at all; only a deadline or a wakeup
//!   from another queue makes the waiter look again.

use core::fmt;
use core::num::NonZeroUsize;

use vcpd_abi::sync::{AtomicUsize, Ordering, fence};
use vcpd_abi::{EventMsg, EventQueue};

use super::{Receiver, VcoreRuntime, setup};

/// Threads that may wait on one queue at once (registrations per
/// [`WaitQueue`]; 3 under `cfg(loom)`, to keep the models small).
pub const WAITERS_PER_QUEUE: usize = if cfg!(loom) { 3 } else { 8 };

/// A thread, as its runtime names it for [`ThreadRuntime::unpark`]: a
/// non-zero word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThreadToken(NonZeroUsize);

impl ThreadToken {
    /// The token `raw`, unless it is 0.
    pub const fn new(raw: usize) -> Option<Self> {
        match NonZeroUsize::new(raw) {
            Some(t) => Some(Self(t)),
            None => None,
        }
    }

    /// The raw word.
    pub const fn get(self) -> usize {
        self.0.get()
    }
}

/// What waiting needs from the process's thread runtime.
pub trait ThreadRuntime: Sync {
    /// The calling thread's token.
    fn current(&self) -> ThreadToken;

    /// Blocks the calling thread until it is unparked or the clock reaches
    /// `deadline`. An [`unpark`](Self::unpark) that came before the call
    /// (since the last return from `park`) makes it return at once (std's
    /// "permit"). It may return spuriously (early, or without an unpark):
    /// callers look again and park again.
    fn park(&self, deadline: Option<u64>);

    /// Unparks `thread`, or makes its next `park` return. Must be harmless
    /// for a thread that is not waiting any more (an alert may come late),
    /// and callable from wherever the queues' handlers run (vcore context).
    /// Whatever the unparker wrote before must be visible to the thread
    /// when its `park` returns (std's `unpark` synchronizes with `park`).
    fn unpark(&self, thread: ThreadToken);

    /// The runtime's monotonic clock (the unit of every deadline, e.g.
    /// nanoseconds).
    fn now(&self) -> u64;
}

/// Why a wait returned without a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The deadline passed first. Nothing stays registered.
    TimedOut,
    /// Queue `queue` (an index into the wait's queues) already has
    /// [`WAITERS_PER_QUEUE`] waiters. Nothing stays registered.
    TooManyWaiters {
        /// Index of the full queue.
        queue: usize,
    },
    /// The buffer for the messages has no room.
    NoRoom,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("the deadline passed"),
            Self::TooManyWaiters { queue } => write!(
                f,
                "queue {queue} of the wait already has {WAITERS_PER_QUEUE} waiters"
            ),
            Self::NoRoom => f.write_str("no room for a message"),
        }
    }
}

impl core::error::Error for WaitError {}

/// Why a [`WaitQueue`] could not be attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// The queue has no mailbox of its own (`ev_mbox` is null: messages go
    /// to VCPD mailboxes, where a waiter cannot claim them).
    NoMailbox,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMailbox => f.write_str("the event queue has no mailbox of its own"),
        }
    }
}

impl core::error::Error for AttachError {}

/// The wakeup controller of one event queue: the threads waiting on it.
///
/// Process memory in spirit (only the process uses it; the kernel never
/// reads `ev_udata`), but it may live anywhere the process's threads and
/// vcores can reach.
pub struct WaitQueue<'a> {
    ev_q: &'a EventQueue,
    rt: &'a dyn ThreadRuntime,
    /// Tokens of the registered threads; 0 = free.
    waiters: [AtomicUsize; WAITERS_PER_QUEUE],
}

impl fmt::Debug for WaitQueue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitQueue")
            .field("ev_q", &(self.ev_q as *const EventQueue))
            .field("waiters", &self.waiters())
            .finish_non_exhaustive()
    }
}

impl<'a> WaitQueue<'a> {
    /// A controller for `ev_q` (which must have a mailbox of its own),
    /// unparking through `rt`: the runtime its waiters park with. Attach
    /// it with [`attach`] before waiting on it.
    pub fn new(ev_q: &'a EventQueue, rt: &'a dyn ThreadRuntime) -> Self {
        Self {
            ev_q,
            rt,
            waiters: core::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }

    /// Its event queue.
    pub fn event_queue(&self) -> &'a EventQueue {
        self.ev_q
    }

    /// Threads registered now (0 whenever nobody waits: a registration
    /// left behind would show here).
    pub fn waiters(&self) -> usize {
        self.waiters
            .iter()
            .filter(|w| w.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Unparks every registered thread; how many. This is what the queue's
    /// handler does on an alert; calling it directly only causes spurious
    /// wakeups.
    pub fn wake_all(&self) -> usize {
        // Store-load: whatever led to this call (a posted message) must be
        // ordered before our reads of the registrations. A waiter
        // registers, fences, then looks at the mailbox: either it sees
        // the message or we see its registration (module docs).
        fence(Ordering::SeqCst);
        let mut n = 0;
        for w in &self.waiters {
            if let Some(t) = ThreadToken::new(w.load(Ordering::Acquire)) {
                self.rt.unpark(t);
                n += 1;
            }
        }
        n
    }

    /// Registers `me`; `false` if every slot is taken.
    fn register(&self, me: ThreadToken) -> bool {
        self.waiters.iter().any(|w| {
            w.compare_exchange(0, me.get(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Removes `me`'s registrations (only `me` writes its token).
    fn deregister(&self, me: ThreadToken) {
        for w in &self.waiters {
            if w.load(Ordering::Relaxed) == me.get() {
                w.store(0, Ordering::Release);
            }
        }
    }
}

/// Makes `ctl` the wakeup controller of its queue: sets the queue's
/// `ev_udata` to it and its `ev_handler` to the handler that wakes its
/// waiters (instead of draining the queue). Call at set-up, before anyone
/// waits on the queue.
pub fn attach(ctl: &'static WaitQueue<'static>) -> Result<(), AttachError> {
    // SAFETY: a `'static` controller outlives every handling of its queue.
    unsafe { attach_unchecked(ctl) }
}

/// [`attach`] for a controller that is not `'static`.
///
/// # Safety
/// `ctl` must stay alive (not moved, not dropped) until [`detach`] has
/// returned for its queue and no vcore is still handling an alert for it
/// (inside [`Receiver::handle_event_q`]).
pub unsafe fn attach_unchecked(ctl: &WaitQueue<'_>) -> Result<(), AttachError> {
    let ev_q = ctl.ev_q;
    if ev_q.ev_mbox.load(Ordering::Acquire) == 0 {
        return Err(AttachError::NoMailbox);
    }
    ev_q.ev_udata.store(
        (ctl as *const WaitQueue<'_>).expose_provenance(),
        Ordering::Relaxed,
    );
    // Release (in `set_evq_handler`): a vcore that sees the handler sees
    // `ev_udata`.
    setup::set_evq_handler(ev_q, Some(wake_waiters));
    Ok(())
}

/// Detaches the queue's wakeup controller: its alerts drain and dispatch
/// again. Threads still waiting on it are no longer woken by it.
pub fn detach(ev_q: &EventQueue) {
    setup::set_evq_handler(ev_q, None);
    ev_q.ev_udata.store(0, Ordering::Release);
}

/// The `ev_handler` of a queue with a [`WaitQueue`]: wake its waiters.
extern "C" fn wake_waiters(ev_q: &EventQueue) {
    let addr = ev_q.ev_udata.load(Ordering::Acquire);
    if addr == 0 || addr % align_of::<WaitQueue<'_>>() != 0 {
        // Detached meanwhile.
        return;
    }
    // SAFETY: this handler is installed only by `attach_unchecked`, which
    // stores the controller's exposed address in `ev_udata` first; the
    // receiver's maker promised (`Receiver::new`) that the process changes
    // `ev_handler`/`ev_udata` only through `setup`/this module, and whoever
    // attached promised the controller outlives the alerts (`'static` for
    // `attach`).
    let ctl = unsafe { &*core::ptr::with_exposed_provenance::<WaitQueue<'_>>(addr) };
    if !core::ptr::eq(ctl.ev_q, ev_q) {
        log::warn!("event: ev_udata of a waitable queue names another queue's controller");
        return;
    }
    ctl.wake_all();
}

/// `me`'s registrations on a wait's queues, removed when dropped.
struct Registration<'w, 'a> {
    queues: &'w [&'w WaitQueue<'a>],
    me: ThreadToken,
}

impl<'w, 'a> Registration<'w, 'a> {
    /// Registers `me` on every queue, or on none.
    fn new(queues: &'w [&'w WaitQueue<'a>], me: ThreadToken) -> Result<Self, WaitError> {
        for (i, q) in queues.iter().enumerate() {
            if !q.register(me) {
                // Dropping the partial registration undoes it.
                let _undo = Self {
                    queues: &queues[..i],
                    me,
                };
                return Err(WaitError::TooManyWaiters { queue: i });
            }
        }
        Ok(Self { queues, me })
    }

    fn cancel(&self) {
        for q in self.queues {
            q.deregister(self.me);
        }
    }
}

impl Drop for Registration<'_, '_> {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn expired<T: ThreadRuntime + ?Sized>(rt: &T, deadline: Option<u64>) -> bool {
    deadline.is_some_and(|d| rt.now() >= d)
}

impl<R: VcoreRuntime> Receiver<'_, R> {
    /// Looks at each queue once, in order, without blocking: the first
    /// message found and the index of its queue.
    pub fn try_wait_any(&self, queues: &[&WaitQueue<'_>]) -> Option<(usize, EventMsg)> {
        let mut one = [EventMsg::default()];
        self.try_wait_any_batch(queues, &mut one)
            .map(|(i, _)| (i, one[0]))
    }

    /// Like [`try_wait_any`](Self::try_wait_any), taking up to `out.len()`
    /// messages from the first queue that has any: `(queue index, count)`.
    pub fn try_wait_any_batch(
        &self,
        queues: &[&WaitQueue<'_>],
        out: &mut [EventMsg],
    ) -> Option<(usize, usize)> {
        queues.iter().enumerate().find_map(|(i, q)| {
            let n = self.drain_event_q(q.ev_q, out);
            (n > 0).then_some((i, n))
        })
    }

    /// Blocks the calling thread until one of `queues` has a message, and
    /// takes it: `(index of its queue, message)`. With a `deadline` (in
    /// `rt`'s clock), gives up once the clock reaches it and returns
    /// [`WaitError::TimedOut`] (never earlier); nothing stays registered,
    /// and a message that arrives meanwhile stays in its queue.
    ///
    /// `rt` must be the runtime the queues' controllers unpark through.
    /// Queues are looked at in order, so an earlier queue that is never
    /// empty starves later ones for this waiter. With no queues, it waits
    /// for the deadline (forever without one).
    pub fn wait_any<T: ThreadRuntime + ?Sized>(
        &self,
        rt: &T,
        queues: &[&WaitQueue<'_>],
        deadline: Option<u64>,
    ) -> Result<(usize, EventMsg), WaitError> {
        let mut one = [EventMsg::default()];
        let (i, _) = self.wait_any_batch(rt, queues, deadline, &mut one)?;
        Ok((i, one[0]))
    }

    /// Like [`wait_any`](Self::wait_any), taking up to `out.len()` messages
    /// from the queue that has some: `(queue index, count)`.
    pub fn wait_any_batch<T: ThreadRuntime + ?Sized>(
        &self,
        rt: &T,
        queues: &[&WaitQueue<'_>],
        deadline: Option<u64>,
        out: &mut [EventMsg],
    ) -> Result<(usize, usize), WaitError> {
        if out.is_empty() {
            return Err(WaitError::NoRoom);
        }
        // Step 1: a message already there needs no registration.
        if let Some(hit) = self.try_wait_any_batch(queues, out) {
            return Ok(hit);
        }
        if expired(rt, deadline) {
            return Err(WaitError::TimedOut);
        }
        // Step 2: register on every queue before looking again. Dropping
        // `_reg` (on every return below) deregisters.
        let _reg = Registration::new(queues, rt.current())?;
        // Store-load, paired with the fence in `WaitQueue::wake_all`: our
        // registrations are visible to a handler that runs after this
        // fence, and a message alerted before it is visible to our look.
        fence(Ordering::SeqCst);
        loop {
            // Step 3.
            if let Some(hit) = self.try_wait_any_batch(queues, out) {
                return Ok(hit);
            }
            if expired(rt, deadline) {
                return Err(WaitError::TimedOut);
            }
            rt.park(deadline);
        }
    }
}
