//! The host conformance check against hosts that keep and break the rules.

#![cfg(not(loom))]

mod common;

use std::ptr::NonNull;

use common::MockProc;
use event_core::testing::check_host;
use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps};
use vcpd_abi::UserMemory;

#[test]
fn the_mock_host_conforms() {
    let p = MockProc::new();
    let page = p.arena.alloc_page().unwrap();
    let report = check_host(&p, page..page + 4096, PcoreId::new(3));
    assert!(report.is_ok(), "{report}");
    assert!(report.checks >= 15, "{report}");
}

/// A host whose check forgets the length: straddling ranges pass.
struct ChecksOnlyTheStart(MockProc);

// SAFETY: a test host that breaks the contract on purpose; the check only
// asks it questions and writes inside the arena.
unsafe impl UserMemory for ChecksOnlyTheStart {
    fn translate(&self, addr: usize, _len: usize) -> Option<NonNull<u8>> {
        self.0.arena.translate(addr, 1)
    }
}

impl ProcOps for ChecksOnlyTheStart {
    type Vcores = common::MockVcores;
    fn events(&self) -> &ProcEvents<common::MockVcores> {
        self.0.events()
    }
    fn procdata(&self) -> ProcDataRef<'_> {
        self.0.procdata()
    }
    fn alloc_user_page(&self) -> Option<usize> {
        // Hands out the same page every time.
        Some(self.0.procdata)
    }
    fn ipi(&self, _: PcoreId) {
        panic!("no such core");
    }
    fn make_runnable(&self) {}
}

#[test]
fn a_broken_host_is_told_what_is_wrong() {
    let p = ChecksOnlyTheStart(MockProc::new());
    let end = p.0.arena.user_range().end;
    let start = end - 4096;
    let report = check_host(&p, start..end, PcoreId::new(3));
    let text = report.to_string();
    assert!(!report.is_ok());
    assert!(text.contains("straddling"), "{text}");
    assert!(text.contains("twice"), "{text}");
    assert!(text.contains("not zeroed"), "{text}");
    assert!(text.contains("spurious interrupt"), "{text}");
}
