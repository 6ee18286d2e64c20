//! `VcoreSet`'s transitions one by one: list order, mappings, state, what
//! each returns, and what each refuses.

#![cfg(not(loom))]

use event_core::testing::thread_cpu_index;
use event_core::vcores::{
    ProcControl, ProcKind, ProcState, Refused, VcoreList, VcoreLists, VcoreSet,
};
use event_core::{PcoreId, VcoreId};
use vcpd_abi::sync::Ordering;
use vcpd_abi::{ProcDataN, VcpdFlags};

const N: usize = 4;

fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).unwrap()
}

fn pc(c: u32) -> PcoreId {
    PcoreId::new(c)
}

fn mcp() -> (VcoreSet<N>, Box<ProcDataN<N>>) {
    (
        VcoreSet::new(ProcKind::Mcp, N as u32, thread_cpu_index),
        Box::new(ProcDataN::new()),
    )
}

fn members(set: &VcoreSet<N>, list: VcoreList) -> Vec<u32> {
    set.members(list).unwrap().iter().map(|v| v.get()).collect()
}

#[test]
fn grant_starts_the_inactive_head_in_id_order() {
    let (set, _) = mcp();
    assert_eq!(members(&set, VcoreList::Inactive), [0, 1, 2, 3]);
    assert_eq!(set.num_vcores(), 0);
    for (i, core) in [7, 5, 9].into_iter().enumerate() {
        let run = set.grant(pc(core)).unwrap();
        assert_eq!((run.vcore, run.pcore), (vc(i as u32), pc(core)));
        assert_eq!(set.pcore_of(run.vcore), Some(pc(core)));
    }
    assert_eq!(members(&set, VcoreList::Online), [0, 1, 2]);
    assert_eq!(set.head(VcoreList::Inactive), Some(vc(3)));
    assert_eq!(set.num_vcores(), 3);
    let _ = set.grant(pc(1)).unwrap();
    assert_eq!(set.grant(pc(2)), Err(Refused::NoInactiveVcore));
}

#[test]
fn yield_refuses_while_notif_pending_and_goes_to_the_inactive_head() {
    let (set, pd) = mcp();
    for c in 0..3 {
        let _ = set.grant(pc(10 + c)).unwrap();
    }
    pd.vcpd[1].notif_pending.store(true, Ordering::Relaxed);
    assert_eq!(set.yield_vcore(&pd.vcpd, vc(1)), Err(Refused::NotifPending));
    assert!(set.is_mapped(vc(1)), "a refused yield changes nothing");
    pd.vcpd[1].notif_pending.store(false, Ordering::Relaxed);
    let left = set.yield_vcore(&pd.vcpd, vc(1)).unwrap();
    assert_eq!(
        (left.vcore, left.pcore, left.waiting),
        (vc(1), pc(11), false)
    );
    assert!(!set.is_mapped(vc(1)));
    assert_eq!(members(&set, VcoreList::Inactive), [1, 3], "yielder first");
    assert_eq!(
        set.yield_vcore(&pd.vcpd, vc(1)),
        Err(Refused::NotOnline),
        "not online any more"
    );
    // The vcore that yielded last is the one granted next.
    assert_eq!(set.grant(pc(20)).unwrap().vcore, vc(1));
    assert_eq!(
        set.yield_vcore(&pd.vcpd, vc(9)),
        Err(Refused::BadVcore(vc(9)))
    );
}

#[test]
fn the_last_yield_makes_the_process_wait_unless_a_vcore_is_preempted() {
    let (set, pd) = mcp();
    let _ = set.grant(pc(1)).unwrap();
    let _ = set.grant(pc(2)).unwrap();
    let _ = set.preempt(&pd.vcpd, vc(1)).unwrap();
    let left = set.yield_vcore(&pd.vcpd, vc(0)).unwrap();
    assert!(!left.waiting, "vcore 1 will be restarted: not WAITING");
    assert_eq!(set.state(), ProcState::Running);
    let _ = set.restart(&pd.vcpd, vc(1), pc(2)).unwrap();
    pd.vcpd[1].notif_pending.store(false, Ordering::Relaxed);
    let left = set.yield_vcore(&pd.vcpd, vc(1)).unwrap();
    assert!(left.waiting);
    assert_eq!(set.state(), ProcState::Waiting);
    assert_eq!(set.num_vcores(), 0);
    // A wakeup makes it runnable once; a grant starts the inactive head.
    assert_eq!(set.wakeup(), Ok(true));
    assert_eq!(set.wakeup(), Ok(false));
    assert_eq!(set.grant(pc(3)).unwrap().vcore, vc(1));
}

#[test]
fn preemption_marks_the_vcpd_and_restart_makes_the_vcore_check_its_mail() {
    let (set, pd) = mcp();
    for c in 0..N as u32 {
        let _ = set.grant(pc(c)).unwrap();
    }
    let stop = set.preempt(&pd.vcpd, vc(2)).unwrap();
    assert_eq!((stop.vcore, stop.pcore), (vc(2), pc(2)));
    assert!(!set.is_mapped(vc(2)));
    assert_eq!(members(&set, VcoreList::BulkPreempted), [2]);
    assert!(
        pd.vcpd[2]
            .flags(Ordering::Relaxed)
            .contains(VcpdFlags::PREEMPTED)
    );
    assert_eq!(
        set.restart(&pd.vcpd, vc(1), pc(1)),
        Err(Refused::NotPreempted)
    );
    assert!(!pd.vcpd[2].notif_pending.load(Ordering::Relaxed));
    let run = set.restart(&pd.vcpd, vc(2), pc(6)).unwrap();
    assert_eq!((run.vcore, run.pcore), (vc(2), pc(6)));
    assert!(
        pd.vcpd[2].notif_pending.load(Ordering::Relaxed),
        "rule 3: a restarted vcore checks its mailboxes first"
    );
    assert!(
        !pd.vcpd[2]
            .flags(Ordering::Relaxed)
            .contains(VcpdFlags::PREEMPTED)
    );
    assert_eq!(members(&set, VcoreList::Online), [0, 1, 3, 2]);
    let stops = set.preempt_all(&pd.vcpd).unwrap();
    assert_eq!(stops.len(), N);
    assert_eq!(members(&set, VcoreList::BulkPreempted), [0, 1, 3, 2]);
    assert_eq!(set.state(), ProcState::Running, "preempted is not WAITING");
}

#[test]
fn destroy_unmaps_everything_and_refuses_later_transitions() {
    let (set, pd) = mcp();
    let _ = set.grant(pc(4)).unwrap();
    let _ = set.grant(pc(5)).unwrap();
    let stops = set.destroy().unwrap();
    let mut cores: Vec<u32> = stops.iter().map(|s| s.pcore.get()).collect();
    cores.sort();
    assert_eq!(cores, [4, 5]);
    assert_eq!(set.state(), ProcState::Dying);
    assert_eq!(set.num_vcores(), 0);
    assert_eq!(set.grant(pc(1)), Err(Refused::Dying));
    assert_eq!(set.yield_vcore(&pd.vcpd, vc(0)), Err(Refused::Dying));
    assert_eq!(set.preempt(&pd.vcpd, vc(0)), Err(Refused::Dying));
}

#[test]
fn an_scp_has_vcore_zero_and_no_lists() {
    let set = VcoreSet::<N>::new(ProcKind::Scp, 1, thread_cpu_index);
    let pd = Box::new(ProcDataN::<N>::new());
    assert!(!set.is_mcp());
    let run = set.grant(pc(3)).unwrap();
    assert_eq!(run.vcore, VcoreId::ZERO);
    assert_eq!(set.grant(pc(4)), Err(Refused::AlreadyMapped));
    assert_eq!(set.head(VcoreList::Online), None);
    assert_eq!(set.preempt(&pd.vcpd, VcoreId::ZERO), Err(Refused::NotMcp));
    pd.vcpd[0].notif_pending.store(true, Ordering::Relaxed);
    assert_eq!(
        set.yield_vcore(&pd.vcpd, VcoreId::ZERO),
        Err(Refused::NotifPending)
    );
    pd.vcpd[0].notif_pending.store(false, Ordering::Relaxed);
    let left = set.yield_vcore(&pd.vcpd, VcoreId::ZERO).unwrap();
    assert!(left.waiting);
    assert_eq!(set.state(), ProcState::Waiting);
}

#[test]
fn a_transition_on_the_cpu_that_holds_the_lock_is_refused_not_deadlocked() {
    let (set, pd) = mcp();
    let inner = set.with_lock(|| set.grant(pc(1))).unwrap();
    assert!(matches!(inner, Err(Refused::LockHeld(_))), "{inner:?}");
    let inner = set.with_lock(|| set.with_lock(|| ())).unwrap();
    assert!(inner.is_err());
    let inner = set.with_lock(|| set.yield_vcore(&pd.vcpd, vc(0))).unwrap();
    assert!(matches!(inner, Err(Refused::LockHeld(_))));
    // Released: everything works again.
    assert!(set.grant(pc(1)).is_ok());
}

#[test]
#[should_panic(expected = "nr_vcores must be in 1..=4")]
fn more_vcores_than_capacity_is_refused_at_construction() {
    let _ = VcoreSet::<N>::new(ProcKind::Mcp, 5, thread_cpu_index);
}
