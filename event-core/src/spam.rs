//! Spamming: getting a message to *some* vcore that will look at it, while
//! vcores yield, get preempted and come back concurrently.
//!
//! A spammed message goes to a public VCPD mailbox (any vcore may drain
//! another's public mailbox after a preemption), and `notif_pending` is set
//! on the target. Each attempt is "post, fence, re-check": post first, then
//! verify the target was still going to look. If a check fails we move on
//! to another candidate; posting to a vcore that did not need it is a
//! harmless spurious message (spammed messages must tolerate duplicates).
//! The unlocked attempts may all fail under a storm of yields; the last
//! resort takes the process lock, where the lists cannot change.

use log::warn;
use vcpd_abi::sync::{Ordering, fence};
use vcpd_abi::{EvqFlags, VcpdFlags};

use crate::host::Sending;
use crate::ids::VcoreId;
use crate::send::{Msgs, post_vc_msg, try_notify, vcpd};
use crate::stats::{Counter, Dropped, SpamPath};
use crate::vcores::{ProcControl, ProcState, VcoreList, VcoreLists};

/// Rounds `spam_list_member` retries with a new list head before failing.
pub const SPAM_LIST_MAX_LOOPS: usize = 10;

fn list_path(list: VcoreList) -> SpamPath {
    match list {
        VcoreList::Online => SpamPath::OnlineList,
        VcoreList::BulkPreempted => SpamPath::BulkPreemptedList,
        VcoreList::Inactive => SpamPath::InactiveHead,
    }
}

/// A list head as a vcore of this process; a head out of range (a broken
/// host) counts as an empty list.
fn head<P: Sending>(p: &P, list: VcoreList) -> Option<VcoreId> {
    let v = p.events().vcores().head(list)?;
    let ok = crate::send::safe_vcore(p, v.get()).is_some();
    if !ok {
        warn!("event: vcore list {list:?} holds out-of-range {v:?}");
    }
    ok.then_some(v)
}

fn is_mapped<P: Sending>(p: &P, v: VcoreId) -> bool {
    p.events().vcores().pcore_of(v).is_some()
}

/// Posts to the vcore's public mailbox (setting `notif_pending`), then
/// interrupts it if the flags ask for IPIs and it is mapped.
pub(crate) fn spam_vcore<P: Sending>(
    p: &P,
    v: VcoreId,
    msg: impl Msgs,
    flags: EvqFlags,
) -> Result<(), Dropped> {
    post_vc_msg(p, v, false, msg)?;
    try_notify(p, v, flags)
}

fn can_msg_vcore<P: Sending>(p: &P, v: VcoreId) -> Result<bool, Dropped> {
    Ok(vcpd(p, v)?
        .flags(Ordering::Acquire)
        .contains(VcpdFlags::CAN_RCV_MSG))
}

/// Spams the vcore only if it says it will receive (`CAN_RCV_MSG`), and
/// succeeds only if it still says so after our post is visible.
fn try_spam_vcore<P: Sending>(
    p: &P,
    v: VcoreId,
    msg: impl Msgs,
    flags: EvqFlags,
) -> Result<bool, Dropped> {
    if !can_msg_vcore(p, v)? {
        return Ok(false);
    }
    spam_vcore(p, v, msg, flags)?;
    // No fence before the re-check: our set of `notif_pending` is a swap,
    // and so is the yielding vcore's clear in its last drain, which it makes
    // after clearing CAN_RCV_MSG. If its clear comes after our set, the
    // drain sees the message; if before, our swap synchronizes with its
    // clear and this read sees CAN_RCV_MSG cleared. (The loom models fail
    // if either swap becomes a store.)
    can_msg_vcore(p, v)
}

/// Spams the head of a vcore list and succeeds if it is still the head
/// afterwards (a vcore still first on the list has not finished yielding,
/// and the yield will see `notif_pending`). Retries with the new head a
/// bounded number of times; failing is always safe.
fn spam_list_member<P: Sending>(
    p: &P,
    list: VcoreList,
    msg: impl Msgs,
    flags: EvqFlags,
) -> Result<bool, Dropped> {
    let mut vc = head(p, list);
    let mut loops = 0;
    while let Some(v) = vc {
        spam_vcore(p, v, msg, flags)?;
        // `notif_pending` must be visible before we re-read the list: the
        // yield path removes the vcore, fences, and re-checks the flag.
        fence(Ordering::SeqCst);
        let first = head(p, list);
        if first == Some(v) {
            p.count(Counter::Spam(list_path(list)));
            return Ok(true);
        }
        // The vcore left the list: try the new head.
        loops += 1;
        if loops > SPAM_LIST_MAX_LOOPS {
            warn!("event: {loops} attempts to find a vcore on the {list:?} list, falling back");
            return Ok(false);
        }
        vc = first;
    }
    Ok(false)
}

/// Makes sure `msg` reaches a vcore that will handle it, preferring
/// `vcoreid`; with `VCORE_MUST_RUN`, one that is running. A batch
/// (`msg: &[EventMsg]`) goes whole to each candidate before its re-check,
/// so the re-check covers all of it.
pub(crate) fn spam_public_msg<P: Sending>(
    p: &P,
    msg: impl Msgs,
    v: VcoreId,
    flags: EvqFlags,
) -> Result<(), Dropped> {
    let vcores = p.events().vcores();
    if !vcores.is_mcp() {
        spam_vcore(p, VcoreId::ZERO, msg, flags)?;
        p.count(Counter::Spam(SpamPath::Scp));
        return Ok(());
    }
    if flags.contains(EvqFlags::VCORE_MUST_RUN) {
        if is_mapped(p, v) {
            spam_vcore(p, v, msg, flags)?;
            // Check, signal, check again: `notif_pending` before the re-read.
            fence(Ordering::SeqCst);
            if is_mapped(p, v) {
                p.count(Counter::Spam(SpamPath::ChosenVcore));
                return Ok(());
            }
        }
        if spam_list_member(p, VcoreList::Online, msg, flags)? {
            return Ok(());
        }
        return ultimate_fallback(p, msg, flags);
    }
    if try_spam_vcore(p, v, msg, flags)? {
        p.count(Counter::Spam(SpamPath::ChosenVcore));
        return Ok(());
    }
    // A WAITING process has no vcore on the online or bulk lists.
    if vcores.state() == ProcState::Waiting {
        return ultimate_fallback(p, msg, flags);
    }
    if spam_list_member(p, VcoreList::Online, msg, flags)?
        || spam_list_member(p, VcoreList::BulkPreempted, msg, flags)?
    {
        return Ok(());
    }
    // Last unlocked chance: the inactive head may be receivable (the
    // fallback below marked it earlier, or a bulk-preempted vcore that was
    // not restarted). If we are WAITING by now, WAKEUP handles it.
    if let Some(vc) = head(p, VcoreList::Inactive) {
        if try_spam_vcore(p, vc, msg, flags)? {
            p.count(Counter::Spam(SpamPath::InactiveHead));
            return Ok(());
        }
    }
    ultimate_fallback(p, msg, flags)
}

/// Under the process lock, where the lists are stable: an online vcore, or
/// a bulk-preempted one, or else the first inactive vcore (the one a
/// wakeup will start), which we mark `CAN_RCV_MSG`.
fn ultimate_fallback<P: Sending>(p: &P, msg: impl Msgs, flags: EvqFlags) -> Result<(), Dropped> {
    let vcores = p.events().vcores();
    vcores
        .with_lock(|| {
            let target = if vcores.state() == ProcState::Waiting {
                None
            } else {
                head(p, VcoreList::Online).or_else(|| head(p, VcoreList::BulkPreempted))
            };
            let (vc, inactive) = match target {
                Some(vc) => (vc, false),
                None => (
                    head(p, VcoreList::Inactive).ok_or(Dropped::NoVcoreToSpam)?,
                    true,
                ),
            };
            spam_vcore(p, vc, msg, flags)?;
            if inactive {
                // It will be woken first; let later senders find it unlocked
                // (a locked RMW only when the flag is not set already).
                let vcpd = vcpd(p, vc)?;
                if !vcpd
                    .flags(Ordering::Relaxed)
                    .contains(VcpdFlags::CAN_RCV_MSG)
                {
                    vcpd.set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
                }
            }
            p.count(Counter::Spam(SpamPath::LockedFallback));
            Ok(())
        })
        .map_err(Dropped::LockHeld)?
}
