//! The test support that needs a real process arena (not loom's): the
//! conformance check and the toy host.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::string::String;
use std::vec::Vec;

use core::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use vcpd_abi::arena::UserArena;
use vcpd_abi::sync::{AtomicU64, Ordering};
use vcpd_abi::{MAX_NUM_VCORES, PAGE_SIZE, ProcDataN, SharedMem, UserAddr, UserMemory};

use crate::host::{ProcDataRef, ProcEvents, ProcOps};
use crate::ids::{PcoreId, VcoreId};
use crate::recv::setup::MboxKind;
use crate::recv::{HandlerTable, Receiver, VcoreRuntime};
use crate::vcores::{ProcKind, VcoreLists, VcoreSet};

use super::thread_cpu_index;

/// What [`check_host`] found: one sentence per problem.
#[derive(Debug, Default)]
pub struct HostReport {
    /// Every problem found, in words.
    pub problems: Vec<String>,
    /// Checks that ran.
    pub checks: usize,
}

impl HostReport {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        self.checks += 1;
        if !ok {
            self.problems.push(problem());
        }
    }
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return write!(f, "host conforms ({} checks)", self.checks);
        }
        writeln!(
            f,
            "host has {} problem(s) in {} checks:",
            self.problems.len(),
            self.checks
        )?;
        for p in &self.problems {
            writeln!(f, "- {p}")?;
        }
        Ok(())
    }
}

/// Runs a host's `UserMemory`, page allocator, IPI hook and procdata
/// through the cases event delivery relies on, and says what is wrong.
///
/// `user` is a range the host maps as writable memory of the process (at
/// least 16 bytes, 8-aligned, e.g. a page you allocated for the test) and
/// `pcore` a core id the host understands. The check writes into `user`.
///
/// ```
/// // A host that accepts everything fails loudly:
/// # use core::ptr::NonNull;
/// # use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps, VcoreSet};
/// # use event_core::vcores::ProcKind;
/// # use event_core::testing::{check_host, thread_cpu_index};
/// struct Lax(ProcEvents<VcoreSet<1>>, Box<vcpd_abi::ProcDataN<1>>, Box<[u64; 512]>);
/// unsafe impl vcpd_abi::UserMemory for Lax {
///     fn translate(&self, addr: usize, _: usize) -> Option<NonNull<u8>> {
///         NonNull::new(core::ptr::with_exposed_provenance_mut(addr))
///     }
/// }
/// impl ProcOps for Lax {
///     type Vcores = VcoreSet<1>;
///     fn events(&self) -> &ProcEvents<VcoreSet<1>> { &self.0 }
///     fn procdata(&self) -> ProcDataRef<'_> { (&*self.1).into() }
///     fn alloc_user_page(&self) -> Option<usize> { None }
///     fn ipi(&self, _: PcoreId) {}
///     fn make_runnable(&self) {}
/// }
/// let host = Lax(
///     ProcEvents::new(VcoreSet::new(ProcKind::Mcp, 1, thread_cpu_index)),
///     Box::new(vcpd_abi::ProcDataN::new()),
///     Box::new([0; 512]),
/// );
/// let range = host.2.as_ptr().expose_provenance()..host.2.as_ptr().expose_provenance() + 4096;
/// let report = check_host(&host, range, PcoreId::new(0));
/// assert!(!report.is_ok());
/// assert!(report.to_string().contains("null"), "{report}");
/// ```
pub fn check_host<P: ProcOps>(
    host: &P,
    user: core::ops::Range<usize>,
    pcore: PcoreId,
) -> HostReport {
    let mut r = HostReport::default();
    let (start, end) = (user.start, user.end);
    r.check(end > start && end - start >= 16 && start % 8 == 0, || {
        format!("check_host needs an 8-aligned range of 16+ bytes, got {start:#x}..{end:#x}")
    });
    if !r.is_ok() {
        return r;
    }
    let len = end - start;
    let t = |addr: usize, n: usize| {
        catch_unwind(AssertUnwindSafe(|| host.translate(addr, n)))
            .map_err(|_| format!("translate({addr:#x}, {n}) panicked"))
    };
    // Inside: accepted, and the same memory through any sub-range.
    match (t(start, len), t(start + 8, 8)) {
        (Ok(Some(whole)), Ok(Some(part))) => {
            r.check(part.as_ptr().addr() == whole.as_ptr().addr() + 8, || {
                format!(
                    "translate is not linear: {start:#x}+8 maps to {:p}, but {start:#x} to {:p}",
                    part, whole
                )
            });
            r.check(
                whole.as_ptr().addr() % PAGE_SIZE == start % PAGE_SIZE,
                || {
                    format!(
                        "translate({start:#x}) returned {whole:p}: not the same offset in its page (misaligned structures follow)"
                    )
                },
            );
            // Written through one translation, read through another.
            if let (Some(a), Some(b)) = (
                UserAddr::<AtomicU64>::new(start).check(host),
                UserAddr::<AtomicU64>::new(start).check(host),
            ) {
                a.store(0x5eed_f00d_dead_beef, Ordering::SeqCst);
                r.check(b.load(Ordering::SeqCst) == 0x5eed_f00d_dead_beef, || {
                    format!("a value written at {start:#x} does not read back: is the memory really writable?")
                });
            } else {
                r.check(false, || {
                    format!(
                        "an aligned u64 at {start:#x} is refused although the range is accepted"
                    )
                });
            }
        }
        (Ok(None), _) | (_, Ok(None)) => r.check(false, || {
            format!("a range the test says is user memory ({start:#x}..{end:#x}) is refused")
        }),
        (Err(e), _) | (_, Err(e)) => r.check(false, || e),
    }
    // Outside and malformed: refused.
    for (addr, n, what) in [
        (0, 8, "null"),
        (8, 8, "the first page (null + 8)"),
        (end, 8, "just past the end of the range"),
        (end - 4, 8, "straddling the end of the range"),
        (usize::MAX - 3, 8, "wrapping around the address space"),
        (start, usize::MAX, "with a length that wraps"),
    ] {
        match t(addr, n) {
            Ok(Some(_)) if what.starts_with("just past") || what.starts_with("straddling") => {
                // Memory after `user` may legitimately belong to the process.
                let next_ok = t(end, 1).ok().flatten().is_some();
                r.check(next_ok, || {
                    format!("translate({addr:#x}, {n}) ({what}) is accepted, but {end:#x} alone is refused: ranges must be checked whole")
                });
            }
            Ok(Some(_)) => r.check(false, || {
                format!("translate({addr:#x}, {n}) ({what}) must be refused")
            }),
            Ok(None) => r.check(true, String::new),
            Err(e) => r.check(false, || e),
        }
    }
    r.check(
        UserAddr::<AtomicU64>::new(start + 4).check(host).is_none(),
        || String::from("a misaligned u64 must be refused (user_ref checks alignment)"),
    );
    // The page allocator: zeroed, aligned, mapped, distinct.
    let pages = catch_unwind(AssertUnwindSafe(|| {
        (host.alloc_user_page(), host.alloc_user_page())
    }));
    match pages {
        Err(_) => r.check(false, || String::from("alloc_user_page panicked")),
        Ok((None, _)) => r.check(false, || {
            String::from("alloc_user_page returned no page (UCQs cannot grow)")
        }),
        Ok((Some(a), b)) => {
            r.check(a % PAGE_SIZE == 0 && a != 0, || {
                format!("alloc_user_page returned {a:#x}: not a page-aligned address")
            });
            r.check(b != Some(a), || {
                format!("alloc_user_page returned {a:#x} twice")
            });
            match UserAddr::<[AtomicU64; PAGE_SIZE / 8]>::new(a).check(host) {
                None => r.check(false, || {
                    format!(
                        "the page alloc_user_page returned ({a:#x}) is not user memory to translate"
                    )
                }),
                Some(words) => r
                    .check(words.iter().all(|w| w.load(Ordering::Relaxed) == 0), || {
                        format!("the page at {a:#x} from alloc_user_page is not zeroed")
                    }),
            }
        }
    }
    // The IPI hook: a core with nothing (or something else) on it.
    r.check(
        catch_unwind(AssertUnwindSafe(|| host.ipi(pcore))).is_ok(),
        || format!("ipi({pcore:?}) panicked: a spurious interrupt must be harmless"),
    );
    // Procdata and the vcore bound.
    let vcores = host.events().vcores();
    let max = vcores.max_vcores() as usize;
    r.check(max <= MAX_NUM_VCORES, || {
        format!("max_vcores() is {max}, above MAX_NUM_VCORES ({MAX_NUM_VCORES})")
    });
    let nvcpd = host.procdata().vcpds.len();
    r.check(nvcpd >= max, || {
        format!("procdata() has {nvcpd} VCPDs for {max} vcores")
    });
    r
}

/// Vcores of a [`ToyHost`].
pub const TOY_VCORES: usize = 4;

/// The smallest complete host: one MCP with [`TOY_VCORES`] vcores, all
/// granted (vcore `v` on pcore `v`), UCQ VCPD mailboxes, its memory a
/// guarded arena. It records interrupts and wakeups instead of acting on
/// them; nothing runs vcore code unless the caller does (with
/// [`receiver`](Self::receiver)).
///
/// ```
/// use event_core::abi::{EventMsg, EventQueue, EvqFlags, UserAddr};
/// use event_core::recv::setup;
/// use event_core::testing::ToyHost;
/// use event_core::{VcoreId, send_event};
///
/// let host = ToyHost::new();
/// let (q, queue) = host.alloc::<EventQueue>();
/// setup::init_evq(queue, UserAddr::NULL, EvqFlags::IPI, VcoreId::ZERO).unwrap();
/// send_event(&host, q, &EventMsg::new(7), VcoreId::ZERO).unwrap();
/// assert_eq!(host.ipis(), [0], "vcore 0 runs on pcore 0");
/// ```
#[derive(Debug)]
pub struct ToyHost {
    arena: UserArena,
    procdata: usize,
    events: ProcEvents<VcoreSet<TOY_VCORES>>,
    ipis: Mutex<std::vec::Vec<u32>>,
    runnable: AtomicUsize,
    handlers: HandlerTable<ToyHost>,
}

impl Default for ToyHost {
    fn default() -> Self {
        Self::new()
    }
}

impl ToyHost {
    /// A running MCP: every vcore granted, its mailboxes set up, and
    /// `CAN_RCV_MSG` advertised (as `vcore_online` would).
    pub fn new() -> Self {
        let arena = UserArena::new(8 << 20);
        let procdata = arena
            .alloc(size_of::<ProcDataN<TOY_VCORES>>(), PAGE_SIZE)
            .expect("the arena has room for procdata");
        let host = Self {
            arena,
            procdata,
            events: ProcEvents::new(VcoreSet::new(
                ProcKind::Mcp,
                TOY_VCORES as u32,
                thread_cpu_index,
            )),
            ipis: Mutex::new(std::vec::Vec::new()),
            runnable: AtomicUsize::new(0),
            handlers: HandlerTable::new(),
        };
        let rx = host.receiver();
        for v in (0..TOY_VCORES as u32).filter_map(VcoreId::new) {
            rx.init_vcpd_mboxes(v, MboxKind::Ucq, MboxKind::Ucq)
                .expect("the arena has pages for the VCPD mailboxes");
            let run = host
                .events
                .vcores()
                .grant(PcoreId::new(v.get()))
                .expect("an inactive vcore is left");
            debug_assert_eq!(run.vcore, v);
            rx.vcpd(v)
                .set_flags(vcpd_abi::VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
        }
        host
    }

    /// Allocates a zeroed `T` in the process's memory: its user address and
    /// the process's reference to it.
    ///
    /// # Panics
    /// If the arena is full.
    pub fn alloc<T: SharedMem>(&self) -> (UserAddr<T>, &T) {
        let r = self.arena.alloc_zeroed::<T>().expect("arena full");
        (UserAddr::new((r as *const T).expose_provenance()), r)
    }

    /// The process's procdata.
    pub fn procdata_ref(&self) -> &ProcDataN<TOY_VCORES> {
        UserAddr::new(self.procdata)
            .check(&self.arena)
            .expect("procdata is in the arena")
    }

    /// The process's handler table (used by [`receiver`](Self::receiver)).
    pub fn handlers(&self) -> &HandlerTable<ToyHost> {
        &self.handlers
    }

    /// A receiver, as the process's vcore code would use.
    pub fn receiver(&self) -> Receiver<'_, ToyHost> {
        // SAFETY: everything reachable from procdata is set up through
        // `setup` in the arena, which lives as long as the host.
        unsafe { Receiver::new(self.procdata_ref(), &self.handlers, self) }
    }

    /// The pcores interrupted so far (and forgets them).
    pub fn ipis(&self) -> std::vec::Vec<u32> {
        core::mem::take(&mut *self.ipis.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// How many times the process was made runnable (WAKEUP).
    pub fn runnable_calls(&self) -> usize {
        self.runnable.load(Ordering::Relaxed)
    }

    /// The process's memory.
    pub fn arena(&self) -> &UserArena {
        &self.arena
    }
}

// SAFETY: forwards to the arena, which keeps the contract.
unsafe impl UserMemory for ToyHost {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.arena.translate(addr, len)
    }
}

impl ProcOps for ToyHost {
    type Vcores = VcoreSet<TOY_VCORES>;
    fn events(&self) -> &ProcEvents<VcoreSet<TOY_VCORES>> {
        &self.events
    }
    fn procdata(&self) -> ProcDataRef<'_> {
        self.procdata_ref().into()
    }
    fn alloc_user_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
    fn ipi(&self, pcore: PcoreId) {
        self.ipis
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pcore.get());
    }
    fn make_runnable(&self) {
        self.runnable.fetch_add(1, Ordering::Relaxed);
    }
}

impl VcoreRuntime for ToyHost {
    fn alloc_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
    fn free_page(&self, page: usize) {
        // The process unmapped a page: credit the UCQ page budget.
        if self.arena.free_page(page) {
            self.events.stats().ucq.page_returned();
        }
    }
}
