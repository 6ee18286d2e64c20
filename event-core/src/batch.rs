//! Sending a burst: N messages to one queue, alerted once.
//!
//! [`send_event_batch`] runs the very code of [`send_event`]
//! (`send_in_process`, generalised to a slice): the messages are posted in
//! order into the queue's mailbox, then the queue is alerted once (one
//! indirection, one notification) and, with `WAKEUP`, the process is woken
//! once. With `SPAM_PUBLIC` the whole batch is spammed as one: every
//! candidate vcore gets all of it before the post-fence-recheck, so the
//! re-check covers the batch, and a candidate that fails its re-check
//! leaves a copy of the batch behind (duplicates, which the spec allows
//! for spammed messages). The guarantees are those of N single sends.

use core::fmt;

use vcpd_abi::{EventMsg, EventQueue, UserAddr};

use crate::host::{OnCpu, ProcOps, Sending};
use crate::ids::VcoreId;
use crate::send::{check_can_send, dropped, send_in_process};
use crate::stats::{Counter, Dropped};

/// A batch that was not delivered whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchDropped {
    /// How many messages, from the front of the batch, went into the
    /// queue's mailbox (and were alerted, unless the alert is what
    /// failed: then this is the whole batch). The rest were not sent;
    /// resending them is safe.
    pub delivered: usize,
    /// Why the next one was not (or why the alert failed).
    pub why: Dropped,
}

impl fmt::Display for BatchDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch stopped after {} messages: {}",
            self.delivered, self.why
        )
    }
}

impl core::error::Error for BatchDropped {}

/// Sends every message of `msgs` to the event queue at user address
/// `ev_q`, alerting once: what `msgs.len()` calls of [`send_event`] would
/// deliver, with one indirection (or notification, or spam, or wakeup)
/// instead of one per message.
///
/// Messages are posted in order; the first one the mailbox refuses stops
/// the batch, and [`BatchDropped::delivered`] says how many went in before
/// it (those are alerted). With `SPAM_PUBLIC` a batch is delivered whole
/// or not at all (`delivered` is 0; copies already spammed to a vcore are
/// harmless duplicates if the caller resends).
///
/// Counters: each message counts as a send, each one not delivered as a
/// drop of the batch's reason (logged once); the spam-path counters count
/// a spammed batch once. An empty batch does nothing.
///
/// [`send_event`]: crate::send_event
pub fn send_event_batch<P: ProcOps>(
    p: &P,
    ev_q: UserAddr<EventQueue>,
    msgs: &[EventMsg],
    vcoreid: VcoreId,
) -> Result<(), BatchDropped> {
    if msgs.is_empty() {
        return Ok(());
    }
    let p = &OnCpu::new(p);
    let stats = p.events().stats();
    if let Err(why) = check_can_send(p) {
        // Counted once already; the rest of the batch too.
        for _ in 1..msgs.len() {
            stats.count_drop(&why);
        }
        return Err(BatchDropped { delivered: 0, why });
    }
    p.count_n(Counter::Sends, msgs.len() as u64);
    let mut posted = 0;
    let result = p.with_address_space(|| send_in_process(p, ev_q, msgs, vcoreid, &mut posted));
    result.map_err(|why| {
        // Only refused posts are lost messages; a failed alert (the
        // messages are in, nobody was told) counts once, like a single
        // send's.
        let lost = (msgs.len() - posted).max(1);
        let why = dropped(p, why);
        for _ in 1..lost {
            stats.count_drop(&why);
        }
        BatchDropped {
            delivered: posted,
            why,
        }
    })
}
