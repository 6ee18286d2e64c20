//! Per-process counters: what was delivered, how, and what was dropped why.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use ceq::CeqStats;
use evbitmap::BitmapStats;
use ucq::UcqStats;
use vcpd_abi::MboxType;

use crate::vcores::LockHeld;

/// Why a message was dropped. Each costs that message alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Called from interrupt context.
    IrqContext,
    /// The process is dying.
    Dying,
    /// The event queue's address was refused.
    BadEventQueue {
        /// The address.
        addr: usize,
        /// Why.
        why: BadAddr,
    },
    /// The event queue is all zeroes: it was never set up.
    EventQueueNotSetUp(usize),
    /// ROUNDROBIN on an MCP with zero vcores.
    NoVcores,
    /// The chosen vcore id is not below the process's bound.
    UnsafeVcore(u32),
    /// A VCPD lies outside the process's memory (broken procdata).
    BadVcpd(u32),
    /// The queue's mailbox address (`ev_mbox`) was refused.
    BadMailbox {
        /// The address.
        addr: usize,
        /// Why.
        why: BadAddr,
    },
    /// `ev_mbox` points at the event queue itself (a big queue's mailbox
    /// is its `ev_imbox` field, 40 bytes in).
    MailboxIsTheQueue(usize),
    /// The mailbox's type tag is 0: it was never set up. The address is
    /// the mailbox's user address, or 0 for a VCPD mailbox.
    MailboxNotSetUp {
        /// The mailbox's user address (0: a VCPD mailbox).
        addr: usize,
        /// The vcore whose VCPD mailbox it is, if it is one.
        vcore: Option<u32>,
    },
    /// The mailbox's type tag names no mailbox type.
    UnknownMailboxType(i32),
    /// The UCQ refused the message.
    Ucq(ucq::SendError),
    /// The CEQ refused the message.
    Ceq(ceq::SendError),
    /// The bitmap refused the message.
    Bitmap(evbitmap::SendError),
    /// A kernel event type not below `MAX_NR_EVENT`.
    BadKernelEventType(u16),
    /// No vcore at all to spam (the host broke the list invariant).
    NoVcoreToSpam,
    /// The sending CPU already holds the process lock (a send from inside
    /// a locked section would spin forever).
    LockHeld(LockHeld),
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IrqContext => f.write_str("send_event called from interrupt context"),
            Self::Dying => f.write_str("process is dying"),
            Self::BadEventQueue { addr, why } => write!(f, "event queue {addr:#x} {why}"),
            Self::EventQueueNotSetUp(a) => {
                write!(f, "event queue {a:#x} is not set up (all zeroes)")
            }
            Self::NoVcores => f.write_str("round-robin over zero vcores"),
            Self::UnsafeVcore(v) => write!(f, "vcore id {v} is out of range"),
            Self::BadVcpd(v) => write!(f, "VCPD of vcore {v} is not user memory"),
            Self::BadMailbox { addr, why } => write!(f, "mailbox {addr:#x} {why}"),
            Self::MailboxIsTheQueue(a) => write!(
                f,
                "ev_mbox {a:#x} points at the event queue itself, not at its mailbox"
            ),
            Self::MailboxNotSetUp { vcore: Some(v), .. } => {
                write!(f, "the VCPD mailbox of vcore {v} is not set up")
            }
            Self::MailboxNotSetUp { addr, .. } => {
                write!(f, "mailbox {addr:#x} is not set up (type 0)")
            }
            Self::UnknownMailboxType(t) => write!(f, "unknown mailbox type {t}"),
            Self::Ucq(e) => write!(f, "{e}"),
            Self::Ceq(e) => write!(f, "{e}"),
            Self::Bitmap(e) => write!(f, "{e}"),
            Self::BadKernelEventType(t) => write!(f, "kernel event type {t} out of range"),
            Self::NoVcoreToSpam => f.write_str("no vcore on any list to spam"),
            Self::LockHeld(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Dropped {}

impl Dropped {
    /// The counter slot of this reason.
    pub const fn kind(&self) -> DropKind {
        match self {
            Self::IrqContext => DropKind::IrqContext,
            Self::Dying => DropKind::Dying,
            Self::BadEventQueue { .. } => DropKind::BadEventQueue,
            Self::EventQueueNotSetUp(_) | Self::MailboxNotSetUp { .. } => DropKind::NotSetUp,
            Self::NoVcores => DropKind::NoVcores,
            Self::UnsafeVcore(_) => DropKind::UnsafeVcore,
            Self::BadVcpd(_) => DropKind::BadVcpd,
            Self::BadMailbox { .. } | Self::MailboxIsTheQueue(_) => DropKind::BadMailbox,
            Self::UnknownMailboxType(_) => DropKind::UnknownMailboxType,
            Self::Ucq(_) | Self::Ceq(_) | Self::Bitmap(_) => DropKind::MailboxRefused,
            Self::BadKernelEventType(_) => DropKind::BadKernelEventType,
            Self::NoVcoreToSpam => DropKind::NoVcoreToSpam,
            Self::LockHeld(_) => DropKind::LockHeld,
        }
    }
}

/// Drop reasons, as counter slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // one per `Dropped` variant, same meaning
pub enum DropKind {
    IrqContext,
    Dying,
    BadEventQueue,
    NoVcores,
    UnsafeVcore,
    BadVcpd,
    BadMailbox,
    UnknownMailboxType,
    MailboxRefused,
    BadKernelEventType,
    NoVcoreToSpam,
    LockHeld,
    NotSetUp,
}

impl DropKind {
    /// Every kind, in counter order.
    pub const ALL: [DropKind; 13] = [
        Self::IrqContext,
        Self::Dying,
        Self::BadEventQueue,
        Self::NoVcores,
        Self::UnsafeVcore,
        Self::BadVcpd,
        Self::BadMailbox,
        Self::UnknownMailboxType,
        Self::MailboxRefused,
        Self::BadKernelEventType,
        Self::NoVcoreToSpam,
        Self::LockHeld,
        Self::NotSetUp,
    ];
}

/// Drops a process may cause before its drop warnings are thinned out.
pub const LOG_FIRST_DROPS: u64 = 8;
/// After the first few, one drop warning in this many is logged.
pub const LOG_EVERY_NTH_DROP: u64 = 1024;

/// Why a user address was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadAddr {
    /// It is null.
    Null,
    /// It is not aligned for what it should point at.
    Misaligned {
        /// The alignment needed.
        align: usize,
    },
    /// The host's `UserMemory` refused the range: not writable memory of
    /// the process (or it runs past the end of it).
    NotUserMemory,
}

impl fmt::Display for BadAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("is null"),
            Self::Misaligned { align } => write!(f, "is misaligned (needs {align}-byte alignment)"),
            Self::NotUserMemory => f.write_str("is not writable memory of the process"),
        }
    }
}

/// Which step of the spam algorithm delivered a spammed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpamPath {
    /// An SCP: its only vcore.
    Scp,
    /// The chosen vcore (CAN_RCV_MSG, or mapped for MUST_RUN).
    ChosenVcore,
    /// A member of the online list.
    OnlineList,
    /// A member of the bulk-preempted list.
    BulkPreemptedList,
    /// The inactive list's head, without the lock.
    InactiveHead,
    /// The locked ultimate fallback.
    LockedFallback,
}

impl SpamPath {
    /// Every path, in counter order.
    pub const ALL: [SpamPath; 6] = [
        Self::Scp,
        Self::ChosenVcore,
        Self::OnlineList,
        Self::BulkPreemptedList,
        Self::InactiveHead,
        Self::LockedFallback,
    ];
}

/// The counters every send may touch, kept per CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// `send_event` calls (and messages of batches) past the dying check.
    Sends,
    /// Indirections sent.
    IndirsSent,
    /// Indirections suppressed by throttling (`ev_alert_pending` was set).
    IndirsThrottled,
    /// Notifications (`notif_pending` set, interrupt if enabled and mapped).
    Notifies,
    /// Interrupts requested through `ProcOps::ipi`.
    Ipis,
    /// Wakeups of a WAITING process.
    Wakeups,
    /// Spammed messages (or batches) delivered by a path.
    Spam(SpamPath),
}

impl Counter {
    const COUNT: usize = 12;

    const fn index(self) -> usize {
        match self {
            Self::Sends => 0,
            Self::IndirsSent => 1,
            Self::IndirsThrottled => 2,
            Self::Notifies => 3,
            Self::Ipis => 4,
            Self::Wakeups => 5,
            Self::Spam(p) => 6 + p as usize,
        }
    }
}

/// CPUs with a counter shard of their own; CPUs with a higher index share
/// one more shard, with atomic read-modify-writes.
pub const STAT_SHARDS: usize = 32;

/// One CPU's copy of the hot counters, on cache lines of its own.
#[derive(Debug)]
#[repr(C, align(64))]
struct Shard([AtomicU64; Counter::COUNT]);

/// A process's event counters, in kernel memory.
///
/// The counters a send touches on its fast paths ([`Counter`]) are kept per
/// CPU (the index the process's vcore set reports, `ProcControl::cpu_index`)
/// and summed when read, so a send pays a plain increment on a line no
/// other CPU writes instead of a locked read-modify-write on a shared one.
/// That is exact as long as two sends never run at once on the same CPU
/// index (a kernel that preempts kernel code mid-send and sends from the
/// preempting thread must keep preemption off around sends, as Akaros's
/// kernel does, or give threads their own indices); if they do, a count
/// may come out low, nothing else. Drops and the mailbox crates' counters
/// are shared atomics.
#[derive(Debug)]
pub struct EventStats {
    /// Per-CPU shards, then the shared one for CPUs past `STAT_SHARDS`.
    shards: [Shard; STAT_SHARDS + 1],
    /// Drops, per [`DropKind`].
    drops: [AtomicU64; 13],
    /// All drops, for the log rate limit.
    drops_seen: AtomicU64,
    /// UCQ producer counters.
    pub ucq: UcqStats,
    /// CEQ producer counters.
    pub ceq: CeqStats,
    /// Bitmap producer counters.
    pub bitmap: BitmapStats,
}

impl Default for EventStats {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStats {
    /// All zero (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            shards: [const { Shard([const { AtomicU64::new(0) }; Counter::COUNT]) };
                STAT_SHARDS + 1],
            drops: [const { AtomicU64::new(0) }; 13],
            drops_seen: AtomicU64::new(0),
            ucq: UcqStats::new(),
            ceq: CeqStats::new(),
            bitmap: BitmapStats::new(),
        }
    }

    /// Adds `n` to counter `c` on CPU `cpu`.
    #[inline]
    pub(crate) fn add(&self, cpu: usize, c: Counter, n: u64) {
        match self.shards.get(cpu).filter(|_| cpu < STAT_SHARDS) {
            Some(shard) => {
                // Only this CPU writes its shard, and not two sends at once
                // (see the type's docs): a plain increment is exact.
                let v = &shard.0[c.index()];
                v.store(v.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
            None => {
                self.shards[STAT_SHARDS].0[c.index()].fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Counter `c`, summed over CPUs.
    pub fn get(&self, c: Counter) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0[c.index()].load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// `send_event` calls (and messages of batches) past the dying check.
    pub fn sends(&self) -> u64 {
        self.get(Counter::Sends)
    }

    /// Indirections sent.
    pub fn indirs_sent(&self) -> u64 {
        self.get(Counter::IndirsSent)
    }

    /// Indirections suppressed by throttling.
    pub fn indirs_throttled(&self) -> u64 {
        self.get(Counter::IndirsThrottled)
    }

    /// Notifications (`notif_pending` set, interrupt if enabled and mapped).
    pub fn notifies(&self) -> u64 {
        self.get(Counter::Notifies)
    }

    /// Interrupts requested through `ProcOps::ipi`.
    pub fn ipis(&self) -> u64 {
        self.get(Counter::Ipis)
    }

    /// Wakeups of a WAITING process.
    pub fn wakeups(&self) -> u64 {
        self.get(Counter::Wakeups)
    }

    /// Posts to mailboxes of type `t`.
    /// (Read from the mailbox crates' own counters.)
    pub fn posted(&self, t: MboxType) -> u64 {
        match t {
            MboxType::Ucq => self.ucq.posted(),
            MboxType::Bitmap => self.bitmap.posted.load(Ordering::Relaxed),
            MboxType::Ceq => self.ceq.coalesced(),
        }
    }

    /// Spammed messages delivered by `path`.
    pub fn spam(&self, path: SpamPath) -> u64 {
        self.get(Counter::Spam(path))
    }

    /// Drops of kind `kind`.
    pub fn drops(&self, kind: DropKind) -> u64 {
        self.drops[kind as usize].load(Ordering::Relaxed)
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    /// Counts a drop; returns its running number if it should be logged.
    /// The first [`LOG_FIRST_DROPS`] drops are logged, then one in
    /// [`LOG_EVERY_NTH_DROP`]: a hostile process cannot flood the kernel's
    /// console, and the counters stay exact.
    pub(crate) fn count_drop(&self, d: &Dropped) -> Option<u64> {
        self.drops[d.kind() as usize].fetch_add(1, Ordering::Relaxed);
        let n = self.drops_seen.fetch_add(1, Ordering::Relaxed) + 1;
        (n <= LOG_FIRST_DROPS || n % LOG_EVERY_NTH_DROP == 0).then_some(n)
    }
}

impl fmt::Display for EventStats {
    /// A one-screen summary, e.g. for a kernel's debug console.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sends {} | posted ucq {} bitmap {} ceq {} | indirs {} throttled {} | notifies {} ipis {} wakeups {}",
            self.sends(),
            self.posted(MboxType::Ucq),
            self.posted(MboxType::Bitmap),
            self.posted(MboxType::Ceq),
            self.indirs_sent(),
            self.indirs_throttled(),
            self.notifies(),
            self.ipis(),
            self.wakeups()
        )?;
        write!(f, "spam:")?;
        for p in SpamPath::ALL {
            write!(f, " {p:?} {}", self.spam(p))?;
        }
        writeln!(f)?;
        write!(f, "drops:")?;
        for k in DropKind::ALL {
            let n = self.drops(k);
            if n != 0 {
                write!(f, " {k:?} {n}")?;
            }
        }
        if self.total_drops() == 0 {
            write!(f, " none")?;
        }
        let u = self.ucq.snapshot();
        write!(
            f,
            "\nucq: page switches {} (spares {}, new pages {}), drops {}",
            u.page_switches,
            u.spares_used,
            u.pages_allocated,
            self.ucq.dropped()
        )?;
        let c = self.ceq.snapshot();
        write!(
            f,
            "\nceq: ring posts {} coalesced {} overflows {}, drops {}",
            c.ring_posts,
            c.already_posted,
            c.overflows,
            self.ceq.dropped()
        )
    }
}
