//! What the loom models share: big-stack threads, and the user-memory
//! check of a model process made of a few owned regions.

#![allow(unreachable_pub)] // shared by several test crates

use std::ptr::NonNull;

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

/// `translate` of a model process whose memory is `regions` (`(start,
/// len)` of boxes it owns, their provenance exposed): a pointer to
/// `[addr, addr + len)` if one region holds it whole.
pub fn translate_in(
    regions: impl IntoIterator<Item = (usize, usize)>,
    addr: usize,
    len: usize,
) -> Option<NonNull<u8>> {
    let inside =
        |(b, l): (usize, usize)| addr >= b && addr.checked_add(len).is_some_and(|e| e <= b + l);
    if regions.into_iter().any(inside) {
        NonNull::new(std::ptr::with_exposed_provenance_mut(addr))
    } else {
        None
    }
}
