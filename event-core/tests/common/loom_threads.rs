//! Thread helpers the loom models share.

#![allow(unreachable_pub)] // shared by several test crates

use loom::thread;

/// Model threads get big stacks: procdata and the handler table are built
/// by value, which overflows loom's default coroutine stack.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().stack_size(4 << 20).spawn(f).unwrap()
}

/// `loom::model`, with the body itself on a big-stack thread.
pub fn model(f: fn()) {
    loom::model(move || spawn(f).join().unwrap());
}
