//! A std thread runtime for the waiting primitive: tokens name std
//! threads (registered on first use, never forgotten, so a late unpark is
//! harmless), park is `thread::park[_timeout]`, the clock is nanoseconds
//! since the first use.

#![allow(dead_code)] // each test file uses a different part
#![allow(unreachable_pub)] // shared by several test crates

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use event_core::recv::wait::{ThreadRuntime, ThreadToken};

/// The runtime (all state is global: one registry of threads).
#[derive(Debug)]
pub struct StdThreads;

pub static STD_THREADS: StdThreads = StdThreads;

static THREADS: RwLock<Vec<Thread>> = RwLock::new(Vec::new());
/// Unparks requested (spurious ones included).
pub static UNPARKS: AtomicU64 = AtomicU64::new(0);

thread_local!(static TOKEN: Cell<usize> = const { Cell::new(0) });

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

impl ThreadRuntime for StdThreads {
    fn current(&self) -> ThreadToken {
        TOKEN.with(|t| {
            if t.get() == 0 {
                let mut all = THREADS.write().unwrap();
                all.push(thread::current());
                t.set(all.len());
            }
            ThreadToken::new(t.get()).unwrap()
        })
    }

    fn park(&self, deadline: Option<u64>) {
        match deadline {
            None => thread::park(),
            Some(d) => {
                let now = self.now();
                if d > now {
                    thread::park_timeout(Duration::from_nanos(d - now));
                }
            }
        }
    }

    fn unpark(&self, t: ThreadToken) {
        UNPARKS.fetch_add(1, Ordering::Relaxed);
        if let Some(th) = THREADS.read().unwrap().get(t.get() - 1) {
            th.unpark();
        }
    }

    fn now(&self) -> u64 {
        epoch().elapsed().as_nanos() as u64
    }
}
