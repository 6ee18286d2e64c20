//! Running code on another CPU: a one-slot mailbox per CPU.
//!
//! After bring-up an AP sits in [`ap_idle_loop`]: interrupts on, halted
//! until something arrives. Another CPU posts a job (a plain function
//! pointer and a `usize` argument, no closure, so nothing needs an
//! allocator) with [`post`], which wakes the target with an IPI on
//! [`crate::platform::lapic::WAKE_VECTOR`]; [`JobHandle::wait`] waits until the job
//! returns (woken by an IPI back) and hands back its `usize` result.
//! [`run_on`] does both.
//!
//! Protocol of `Mailbox::state`: IDLE -> POSTED (poster, under the slot
//! lock) -> RUNNING (target) -> DONE (target, Release: publishes `result`)
//! -> IDLE (waiter, after reading the result with Acquire). One job at a
//! time per CPU; posting to a busy CPU is an error, not a queue.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use spin::Mutex;
use x86_64::instructions::interrupts;

use crate::platform::percpu::{self, PerCpu};

/// A job: runs on the target CPU with interrupts enabled.
pub type JobFn = fn(arg: usize) -> usize;

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

/// A CPU's job slot (in its [`PerCpu`]).
#[derive(Debug)]
pub(crate) struct Mailbox {
    state: AtomicU8,
    job: Mutex<Option<(JobFn, usize)>>,
    result: AtomicUsize,
    /// The CPU that posted the job, woken by an IPI when it is done.
    poster: AtomicUsize,
}

impl Mailbox {
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU8::new(IDLE),
            job: Mutex::new(None),
            result: AtomicUsize::new(0),
            poster: AtomicUsize::new(0),
        }
    }
}

/// Why a job could not be posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// No such CPU, or it is not online.
    Offline(usize),
    /// The CPU is the caller itself (it would wait for itself forever).
    SelfTarget(usize),
    /// CPU 0, the BSP, runs `kmain` and the scenarios, not the idle loop
    /// that takes jobs.
    NotAnAp(usize),
    /// The CPU still has a job that nobody has waited for.
    Busy(usize),
}

/// A posted job; [`wait`](Self::wait) for its result.
#[derive(Debug)]
#[must_use = "a posted job must be waited for before the CPU takes another"]
pub struct JobHandle {
    cpu: &'static PerCpu,
}

/// Posts `func(arg)` to CPU `cpu` and returns at once.
pub fn post(cpu: usize, func: JobFn, arg: usize) -> Result<JobHandle, PostError> {
    let target = percpu::all()
        .get(cpu)
        .filter(|c| c.is_online())
        .ok_or(PostError::Offline(cpu))?;
    if cpu == percpu::current_index() {
        return Err(PostError::SelfTarget(cpu));
    }
    if cpu == 0 {
        return Err(PostError::NotAnAp(cpu));
    }
    let mbox = &target.mailbox;
    interrupts::without_interrupts(|| {
        let mut slot = mbox.job.lock();
        if mbox.state.load(Ordering::Acquire) != IDLE {
            return Err(PostError::Busy(cpu));
        }
        *slot = Some((func, arg));
        mbox.poster
            .store(percpu::current_index(), Ordering::Relaxed);
        mbox.state.store(POSTED, Ordering::Release);
        Ok(())
    })?;
    // The target may be halted: an interrupt wakes it, and its idle loop
    // checks the mailbox with interrupts off before halting again.
    crate::platform::lapic::send_ipi(cpu, crate::platform::lapic::WAKE_VECTOR);
    Ok(JobHandle { cpu: target })
}

impl JobHandle {
    /// The CPU running the job.
    pub fn cpu(&self) -> usize {
        self.cpu.index()
    }

    /// Whether the job has returned.
    pub fn is_done(&self) -> bool {
        self.cpu.mailbox.state.load(Ordering::Acquire) == DONE
    }

    /// Waits until the job returns; its result. With interrupts enabled the
    /// caller halts until the target's completion IPI (under TCG a spinning
    /// vCPU would steal host time from the one doing the work); with
    /// interrupts disabled it spins.
    pub fn wait(self) -> usize {
        let mbox = &self.cpu.mailbox;
        if interrupts::are_enabled() {
            loop {
                interrupts::disable();
                if mbox.state.load(Ordering::Acquire) == DONE {
                    interrupts::enable();
                    break;
                }
                // Atomic `sti; hlt`: the completion IPI cannot slip in
                // between the check and the halt.
                interrupts::enable_and_hlt();
            }
        } else {
            while mbox.state.load(Ordering::Acquire) != DONE {
                core::hint::spin_loop();
            }
        }
        let result = mbox.result.load(Ordering::Relaxed);
        mbox.state.store(IDLE, Ordering::Release);
        result
    }
}

/// Runs `func(arg)` on CPU `cpu` and waits for its result.
pub fn run_on(cpu: usize, func: JobFn, arg: usize) -> Result<usize, PostError> {
    Ok(post(cpu, func, arg)?.wait())
}

/// The idle loop of an AP: runs posted jobs, halts in between. Never returns.
pub(crate) fn ap_idle_loop() -> ! {
    let mbox = &percpu::current().mailbox;
    loop {
        interrupts::disable();
        if mbox.state.load(Ordering::Acquire) == POSTED {
            let job = mbox.job.lock().take();
            mbox.state.store(RUNNING, Ordering::Relaxed);
            interrupts::enable();
            let result = match job {
                Some((func, arg)) => func(arg),
                None => unreachable!("POSTED with an empty slot"),
            };
            mbox.result.store(result, Ordering::Relaxed);
            let poster = mbox.poster.load(Ordering::Relaxed);
            mbox.state.store(DONE, Ordering::Release);
            // Wake the poster if it halts in `wait` (harmless if it spins).
            crate::platform::lapic::send_ipi(poster, crate::platform::lapic::WAKE_VECTOR);
        } else {
            // `sti; hlt` as one step: an IPI that arrives after the check
            // above still ends the halt, so no wake-up is lost.
            interrupts::enable_and_hlt();
        }
    }
}
