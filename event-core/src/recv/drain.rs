//! Batch extraction on the receive half, for every mailbox type.
//!
//! A UCQ hands out a batch with one claim (`ucq::try_recv_batch`); a CEQ
//! and a bitmap have no batch claim, so their batches are repeated single
//! claims. Either way each message is taken exactly once, and a batch
//! holds messages in the order the mailbox gives them out.

use vcpd_abi::sync::Ordering;
use vcpd_abi::{EventMbox, EventMsg, EventQueue, MboxRef};

use super::{Adapt, Receiver, VcoreRuntime};

impl<R: VcoreRuntime> Receiver<'_, R> {
    /// Takes up to `out.len()` messages from a mailbox of any type into
    /// the front of `out`; how many (0 if it is empty or not set up).
    pub fn extract_batch(&self, mbox: &EventMbox, out: &mut [EventMsg]) -> usize {
        match mbox.body() {
            Ok(MboxRef::Ucq(u)) => {
                // SAFETY: the receiver's maker promised (`Receiver::new`)
                // that this mailbox and the pages it names are the
                // process's own memory.
                let u = unsafe { ucq::Consumer::new(u) };
                // A UCQ batch never spans a page: claim again until `out`
                // is full or the queue is empty.
                let mut n = 0;
                while n < out.len() {
                    let got = u.try_recv_batch(&Adapt(self.rt), &mut out[n..]);
                    if got == 0 {
                        break;
                    }
                    n += got;
                }
                n
            }
            Ok(MboxRef::Ceq(c)) => {
                // SAFETY: as above (and the arrays the CEQ names).
                let c = unsafe { ceq::Consumer::new(c) };
                fill(out, || c.try_recv(&Adapt(self.rt)))
            }
            Ok(MboxRef::Bitmap(b)) => fill(out, || evbitmap::try_recv(b)),
            Err(_) => 0,
        }
    }

    /// Takes up to `out.len()` messages from an event queue's own mailbox
    /// (none from a queue whose `ev_mbox` is null), without dispatching
    /// them and without touching its alert state.
    pub fn drain_event_q(&self, ev_q: &EventQueue, out: &mut [EventMsg]) -> usize {
        match ev_q.ev_mbox.load(Ordering::Acquire) {
            0 => 0,
            mbox => self.extract_batch(self.own::<EventMbox>(mbox), out),
        }
    }
}

fn fill(out: &mut [EventMsg], mut next: impl FnMut() -> Option<EventMsg>) -> usize {
    let mut n = 0;
    for slot in out.iter_mut() {
        match next() {
            Some(m) => {
                *slot = m;
                n += 1;
            }
            None => break,
        }
    }
    n
}
