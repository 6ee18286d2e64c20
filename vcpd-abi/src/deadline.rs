//! Test support (feature `std`): run a concurrency test under a deadline.

/// Runs `f` on its own thread and returns its result, or panics naming
/// `what` if it takes longer than `limit`: a concurrency test that hangs
/// becomes a failure in bounded time instead of a stuck CI run. (The stuck
/// thread is left behind; the test process ends without it.)
///
/// # Panics
/// On timeout, and if `f` panics.
pub fn with_deadline<T: Send + 'static>(
    what: &str,
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(limit) {
        // A result, or the worker panicked before sending: join either way
        // (re-raising its panic).
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => worker
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: no result after {limit:?}: a hang (lost wake-up or livelock)")
        }
    }
}
