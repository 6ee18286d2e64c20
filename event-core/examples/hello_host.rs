//! A complete host in one file: a "kernel" whose cores are std threads,
//! one process with four vcores, and one event sent per flag mode (IPI,
//! INDIR, SPAM_PUBLIC, WAKEUP) from the kernel to handlers on the vcores.
//!
//! `cargo run -p event-core --example hello_host`
//!
//! What a real kernel writes is the part marked HOST: `UserMemory` and the
//! five `ProcOps` methods. The rest plays the process (set-up, vcore loop).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use event_core::abi::{EventMsg, EventQueue, EventQueueBig, EvqFlags, ProcData, UserAddr};
use event_core::abi::{PAGE_SIZE, SharedMem, UserMemory, UserMemoryExt};
use event_core::recv::setup::{self, MboxKind};
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::testing::thread_cpu_index;
use event_core::vcores::{ProcKind, VcoreList, VcoreLists, VcoreSet};
use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps, VcoreId, send_event};

const VCORES: u32 = 4;
const MEM: usize = 4 << 20;

/// The process's memory: one page-aligned block (its "address space").
/// The process's memory.
#[derive(Debug)]
pub(crate) struct Memory {
    base: usize,
    next_page: AtomicUsize,
}

impl Memory {
    fn new() -> Self {
        let layout = std::alloc::Layout::from_size_align(MEM, PAGE_SIZE).unwrap();
        // SAFETY: a non-zero size; leaked on purpose (lives as long as the example).
        let base = unsafe { std::alloc::alloc_zeroed(layout) }.expose_provenance();
        Self {
            base,
            next_page: AtomicUsize::new(0),
        }
    }
    /// A fresh zeroed page.
    pub(crate) fn page(&self) -> Option<usize> {
        let n = self.next_page.fetch_add(1, Ordering::Relaxed);
        (n < MEM / PAGE_SIZE).then(|| self.base + n * PAGE_SIZE)
    }
}

/// The kernel's process record (and, here, the process itself).
#[derive(Debug)]
pub(crate) struct Process {
    /// Its memory.
    pub(crate) mem: Memory,
    procdata: usize,
    events: ProcEvents<VcoreSet<4>>,
    interrupted: [AtomicBool; VCORES as usize],
    threads: Mutex<Vec<thread::Thread>>,
    /// The process's handlers.
    pub(crate) handlers: HandlerTable<Process>,
    /// Messages handled, by the flag mode that sent them (ev_type).
    pub(crate) delivered: [AtomicUsize; 4],
    /// The sum of the handled messages' `ev_arg2` (a CEQ adds them up).
    pub(crate) ceq_total: AtomicUsize,
}

// HOST 1/2: the user-memory check. Ranges inside the block only.
// SAFETY: the block is allocated for the whole run and holds nothing the
// "kernel" relies on; user addresses are host addresses (identity map).
unsafe impl UserMemory for Process {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        let end = addr.checked_add(len)?;
        (addr >= self.mem.base && end <= self.mem.base + MEM)
            .then(|| NonNull::new(std::ptr::with_exposed_provenance_mut(addr)))?
    }
}

// HOST 2/2: what only the kernel knows.
impl ProcOps for Process {
    type Vcores = VcoreSet<4>;
    fn events(&self) -> &ProcEvents<VcoreSet<4>> {
        &self.events
    }
    fn procdata(&self) -> ProcDataRef<'_> {
        self.user_ref::<ProcData>(self.procdata).unwrap().into()
    }
    fn alloc_user_page(&self) -> Option<usize> {
        self.mem.page()
    }
    fn ipi(&self, pcore: PcoreId) {
        // Pcore c runs vcore c here: raise its "interrupt line".
        self.interrupted[pcore.get() as usize].store(true, Ordering::Release);
        self.threads.lock().unwrap()[pcore.get() as usize].unpark();
    }
    fn make_runnable(&self) {
        // The scheduler gives the woken process a core.
        self.grant_one();
    }
}

impl Process {
    fn grant_one(&self) {
        if let Some(v) = self.events.vcores().head(VcoreList::Inactive) {
            let _ = self.events.vcores().grant(PcoreId::new(v.get()));
            self.threads.lock().unwrap()[v.index()].unpark();
        }
    }
    /// The `T` at user address `addr` (process-side set-up code).
    pub(crate) fn user_ref_of<T: SharedMem>(&self, addr: usize) -> &T {
        self.user_ref(addr).unwrap()
    }

    /// `n` `T`s from user address `addr`.
    #[allow(dead_code)] // used by the `ceq_and_bitmap` example
    pub(crate) fn user_slice<T: SharedMem>(&self, addr: usize, n: usize) -> &[T] {
        UserAddr::<T>::new(addr).check_slice(self, n).unwrap()
    }

    /// A receiver for vcore code.
    pub(crate) fn receiver(&self) -> Receiver<'_, Process> {
        let pd = self.user_ref::<ProcData>(self.procdata).unwrap();
        // SAFETY: this process sets its queues up only through `setup`, in
        // memory that lives for the whole run.
        unsafe { Receiver::new(pd, &self.handlers, self) }
    }
}

// The process's runtime: pages for its UCQs.
impl VcoreRuntime for Process {
    fn alloc_page(&self) -> Option<usize> {
        self.mem.page()
    }
    fn free_page(&self, _: usize) {}
}

/// Counts a message by its mode (`ev_type` 20 + mode).
pub(crate) fn on_message(rx: &Receiver<'_, Process>, v: VcoreId, msg: &EventMsg, _: usize) {
    let p = rx.runtime();
    p.delivered[usize::from(msg.ev_type) - 20].fetch_add(1, Ordering::Relaxed);
    p.ceq_total
        .fetch_add(msg.ev_arg2 as usize, Ordering::Relaxed);
    println!("  vcore {v} handled event type {}", msg.ev_type);
}

/// The flag modes this example sends with, and their queue flags.
pub(crate) const MODES: [(&str, EvqFlags); 4] = [
    ("IPI", EvqFlags::IPI),
    ("INDIR", EvqFlags::INDIR.union(EvqFlags::IPI)),
    ("SPAM_PUBLIC", EvqFlags::SPAM_PUBLIC.union(EvqFlags::IPI)),
    ("WAKEUP", EvqFlags::SPAM_PUBLIC.union(EvqFlags::WAKEUP)),
];

/// A vcore's life: wait to be mapped, come online, handle events when
/// interrupted, yield when told to.
fn vcore_thread(p: Arc<Process>, v: VcoreId, stop: Arc<AtomicBool>, yield_now: Arc<AtomicBool>) {
    let rx = p.receiver();
    while !stop.load(Ordering::Acquire) {
        if !p.events.vcores().is_mapped(v) {
            thread::park_timeout(Duration::from_millis(5));
            continue;
        }
        rx.vcore_online(v);
        while !stop.load(Ordering::Acquire) {
            if p.interrupted[v.index()].swap(false, Ordering::AcqRel)
                || rx.vcpd(v).notif_pending.load(Ordering::Acquire)
            {
                rx.handle_events(v);
            }
            if yield_now.load(Ordering::Acquire) {
                rx.prepare_to_yield(v);
                let vcpds = &p.procdata().vcpds;
                if p.events.vcores().yield_vcore(vcpds, v).is_ok() {
                    break;
                }
                rx.vcore_online(v);
            }
            thread::park_timeout(Duration::from_millis(5));
        }
    }
}

impl Process {
    /// A process with UCQ VCPD mailboxes and a handler for each of the
    /// event types 20..24.
    pub(crate) fn new() -> Arc<Self> {
        let mem = Memory::new();
        let procdata = mem.page().unwrap();
        for _ in 1..size_of::<ProcData>().div_ceil(PAGE_SIZE) {
            mem.page();
        }
        let p = Arc::new(Process {
            mem,
            procdata,
            events: ProcEvents::new(VcoreSet::new(ProcKind::Mcp, VCORES, thread_cpu_index)),
            interrupted: Default::default(),
            threads: Mutex::new(Vec::new()),
            handlers: HandlerTable::new(),
            delivered: Default::default(),
            ceq_total: AtomicUsize::new(0),
        });
        let rx = p.receiver();
        for v in (0..VCORES).filter_map(VcoreId::new) {
            rx.init_vcpd_mboxes(v, MboxKind::Ucq, MboxKind::Ucq)
                .unwrap();
        }
        for t in 20..24 {
            p.handlers.register(t, on_message, 0).unwrap();
        }
        p
    }

    /// Starts one thread per vcore (the "cores") and grants them all.
    pub(crate) fn start(self: &Arc<Self>) -> Cores {
        let stop = Arc::new(AtomicBool::new(false));
        let yield_now = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..VCORES)
            .map(|v| {
                let (p, stop, y) = (self.clone(), stop.clone(), yield_now.clone());
                thread::spawn(move || vcore_thread(p, VcoreId::new(v).unwrap(), stop, y))
            })
            .collect();
        *self.threads.lock().unwrap() = handles.iter().map(|h| h.thread().clone()).collect();
        for _ in 0..VCORES {
            self.grant_one();
        }
        Cores {
            stop,
            yield_now,
            handles,
        }
    }

    /// Waits (at most 5 s) until `n` messages of mode `i` were handled.
    pub(crate) fn wait_for(&self, i: usize, n: usize) {
        let start = Instant::now();
        while self.delivered[i].load(Ordering::Relaxed) < n
            && start.elapsed() < Duration::from_secs(5)
        {
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Prints the delivered count per mode; whether each mode delivered.
    pub(crate) fn report(&self, modes: &[&str]) -> bool {
        println!("delivered per flag mode:");
        let mut all = true;
        for (i, name) in modes.iter().enumerate() {
            let n = self.delivered[i].load(Ordering::Relaxed);
            println!("  {name:<12} {n}");
            all &= n >= 1;
        }
        println!("{}", self.events.stats());
        all
    }
}

/// The vcore threads.
#[derive(Debug)]
pub(crate) struct Cores {
    stop: Arc<AtomicBool>,
    yield_now: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Cores {
    /// Every vcore yields; returns once the process is WAITING.
    pub(crate) fn yield_all(&self, p: &Process) {
        self.yield_now.store(true, Ordering::Release);
        while p.events.vcores().num_vcores() > 0 {
            thread::sleep(Duration::from_millis(1));
        }
        self.yield_now.store(false, Ordering::Release);
        let state = p.events.vcores().state();
        println!("all vcores yielded: the process is {state:?}");
    }

    /// Stops and joins the threads.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for h in self.handles {
            h.thread().unpark();
            h.join().unwrap();
        }
    }
}

#[allow(dead_code)] // this file is also a module of the `ceq_and_bitmap` example
fn main() {
    let p = Process::new();
    // One queue per mode, preferring vcore 1. INDIR: a queue with its own
    // UCQ; the others deliver to VCPD mailboxes.
    let vcore1 = VcoreId::new(1).unwrap();
    let queues: Vec<UserAddr<EventQueue>> = MODES
        .iter()
        .map(|(_, flags)| {
            let q = p.mem.page().unwrap();
            if flags.contains(EvqFlags::INDIR) {
                let big = p.user_ref_of::<EventQueueBig>(q);
                setup::init_big_evq(big, MboxKind::Ucq, *flags, vcore1, &*p).unwrap();
            } else {
                let slim = p.user_ref_of::<EventQueue>(q);
                setup::init_evq(slim, UserAddr::NULL, *flags, vcore1).unwrap();
            }
            UserAddr::new(q)
        })
        .collect();
    let cores = p.start();
    // The kernel sends one event per mode; before WAKEUP, every vcore
    // yields and the process goes WAITING.
    for (i, (name, _)) in MODES.iter().enumerate() {
        if *name == "WAKEUP" {
            cores.yield_all(&p);
        }
        println!("kernel: sending with {name}");
        let msg = EventMsg::new(20 + i as u16);
        send_event(&*p, queues[i], &msg, VcoreId::ZERO).unwrap();
        p.wait_for(i, 1);
    }
    cores.stop();
    let ok = p.report(&MODES.map(|m| m.0));
    std::process::exit(if ok { 0 } else { 1 });
}
