/*
 * The shared-memory structures of Akaros's event delivery, x86_64, restated
 * from facts about Akaros's headers so that gcc (not a comment, not our own
 * arithmetic) says where every field lands. `generate.sh` compiles this with
 * the host gcc (x86_64 Linux: LP64, the same ABI as Akaros's x86_64 user
 * space), runs it, and writes `offsets.rs`, which `tests/layout.rs` checks
 * every Rust offset and size against.
 *
 * Where the facts come from (Akaros paths; "spec" is the project's
 * shared/spec/event-delivery.md section 2, restating the same headers):
 *  - hw_trapframe, sw_trapframe, vm_trapframe: kern/arch/x86/ros/trapframe64.h
 *    (field order and types as declared there).
 *  - user_context, ancillary_state: kern/arch/x86/ros/trapframe.h. The
 *    ancillary_state's legacy region is a union of FXSAVE header layouts,
 *    ST/MM registers and XMM registers; their extents (32 + 8*16 + 16*16 +
 *    96 = 512) are the FXSAVE format (Intel SDM vol. 1, 10.5.1) and are
 *    flattened to byte arrays here. Its XSAVE header holds xstate_bv,
 *    xcomp_bv and ONE 16-byte reserv6 (32 bytes, so extended_region[2120]
 *    starts at 544; the header's "offset 576" comment is wrong), and the
 *    struct is aligned(64): issue 10 and shared/spec/platform-notes.md.
 *  - event_msg, event_mbox, event_queue, event_queue_big, preempt_data:
 *    kern/include/ros/event.h (+ spec section 2). Akaros's x86 atomic_t
 *    is `void *`: a pointer-sized word.
 *  - ucq, ucq_page_header, msg_container, ucq_page, NR_MSG_PER_PAGE:
 *    kern/include/ros/ucq.h. u_lock is `uint32_t u_lock[2]` there (user
 *    space views it as a spin_pdr_lock).
 *  - ceq_event, ceq: kern/include/ros/ceq.h.
 *  - evbitmap: kern/include/ros/evbitmap.h.
 *  - procdata's event part: kern/include/ros/procdata.h holds
 *    `struct event_queue *kernel_evts[MAX_NR_EVENT]` and
 *    `struct preempt_data vcore_preempt_data[MAX_NUM_VCORES]` after fields
 *    event delivery does not use; this crate's ProcData is those two alone,
 *    with MAX_NUM_VCORES = 64 (our ABI's choice).
 *  - NR_EVENT_TYPES 25, MAX_NR_DYN_EVENT 25 (MAX_NR_EVENT 50), PGSIZE 4096:
 *    ros/bits/event.h, ros/arch/mmu.h (+ spec section 2).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PGSIZE 4096
#define NR_EVENT_TYPES 25
#define MAX_NR_DYN_EVENT 25
#define MAX_NR_EVENT (NR_EVENT_TYPES + MAX_NR_DYN_EVENT)
#define MAX_NUM_VCORES 64
#define ROUNDUP(x, n) ((((x) + (n) - 1) / (n)) * (n))

typedef void *atomic_t;

struct hw_trapframe {
	uint64_t tf_gsbase;
	uint64_t tf_fsbase;
	uint64_t tf_rax;
	uint64_t tf_rbx;
	uint64_t tf_rcx;
	uint64_t tf_rdx;
	uint64_t tf_rbp;
	uint64_t tf_rsi;
	uint64_t tf_rdi;
	uint64_t tf_r8;
	uint64_t tf_r9;
	uint64_t tf_r10;
	uint64_t tf_r11;
	uint64_t tf_r12;
	uint64_t tf_r13;
	uint64_t tf_r14;
	uint64_t tf_r15;
	uint32_t tf_trapno;
	uint32_t tf_padding5;
	uint32_t tf_err;
	uint32_t tf_padding4;
	uint64_t tf_rip;
	uint16_t tf_cs;
	uint16_t tf_padding3;
	uint32_t tf_padding2;
	uint64_t tf_rflags;
	uint64_t tf_rsp;
	uint16_t tf_ss;
	uint16_t tf_padding1;
	uint32_t tf_padding0;
};

struct sw_trapframe {
	uint64_t tf_gsbase;
	uint64_t tf_fsbase;
	uint64_t tf_rbx;
	uint64_t tf_rbp;
	uint64_t tf_r12;
	uint64_t tf_r13;
	uint64_t tf_r14;
	uint64_t tf_r15;
	uint64_t tf_rip;
	uint64_t tf_rsp;
	uint32_t tf_mxcsr;
	uint16_t tf_fpucw;
	uint16_t tf_padding0;
};

struct vm_trapframe {
	uint64_t tf_rax;
	uint64_t tf_rbx;
	uint64_t tf_rcx;
	uint64_t tf_rdx;
	uint64_t tf_rbp;
	uint64_t tf_rsi;
	uint64_t tf_rdi;
	uint64_t tf_r8;
	uint64_t tf_r9;
	uint64_t tf_r10;
	uint64_t tf_r11;
	uint64_t tf_r12;
	uint64_t tf_r13;
	uint64_t tf_r14;
	uint64_t tf_r15;
	uint64_t tf_rip;
	uint64_t tf_rflags;
	uint64_t tf_rsp;
	uint64_t tf_cr2;
	uint64_t tf_cr3;
	uint32_t tf_guest_pcoreid;
	uint32_t tf_flags;
	uint32_t tf_trap_inject;
	uint16_t tf_guest_intr_status;
	uint16_t tf_padding0;
	uint32_t tf_exit_reason;
	uint32_t tf_exit_qual;
	uint32_t tf_intrinfo1;
	uint32_t tf_intrinfo2;
	uint64_t tf_guest_va;
	uint64_t tf_guest_pa;
};

struct user_context {
	int type;
	union {
		struct hw_trapframe hw_tf;
		struct sw_trapframe sw_tf;
		struct vm_trapframe vm_tf;
	} tf;
};

struct ancillary_state {
	/* Legacy (FXSAVE) region. */
	uint8_t fp_head[32];
	uint8_t st_mm[8][16];
	uint8_t xmm[16][16];
	uint8_t fx_reserved[96];
	/* XSAVE header, as Akaros declares it: 32 bytes. */
	uint64_t xstate_bv;
	uint64_t xcomp_bv;
	uint8_t reserv6[16];
	/* Extended region. */
	uint8_t extended_region[2120];
} __attribute__((aligned(64)));

struct event_msg {
	uint16_t ev_type;
	uint16_t ev_arg1;
	uint32_t ev_arg2;
	void *ev_arg3;
	uint64_t ev_arg4;
};

struct ucq {
	atomic_t prod_idx;
	atomic_t spare_pg;
	atomic_t nr_extra_pgs;
	atomic_t cons_idx;
	bool prod_overflow;
	bool ucq_ready;
	uint32_t u_lock[2];
};

struct ucq_page_header {
	uintptr_t cons_next_pg;
	atomic_t nr_cons;
};

struct msg_container {
	struct event_msg ev_msg;
	bool ready;
};

struct ucq_page {
	struct ucq_page_header header;
	struct msg_container msgs[];
};

#define NR_MSG_PER_PAGE                                                        \
	((PGSIZE - ROUNDUP(sizeof(struct ucq_page_header),                     \
			   __alignof__(struct msg_container))) /                \
	 sizeof(struct msg_container))

struct ceq_event {
	atomic_t coalesce;
	uint64_t blob_data;
	bool idx_posted;
	uint64_t user_data;
};

struct ceq {
	struct ceq_event *events;
	unsigned int nr_events;
	unsigned int last_recovered;
	atomic_t max_event_ever;
	int32_t *ring;
	uint32_t ring_sz;
	uint8_t operation;
	bool ring_overflowed;
	bool overflow_recovery;
	atomic_t prod_idx;
	atomic_t cons_pub_idx;
	atomic_t cons_pvt_idx;
	uint32_t u_lock[2];
};

struct evbitmap {
	bool check_bits;
	uint8_t bitmap[(MAX_NR_EVENT - 1) / 8 + 1];
};

struct event_mbox {
	int type;
	union {
		struct ucq ucq;
		struct evbitmap evbm;
		struct ceq ceq;
	};
};

struct event_queue {
	struct event_mbox *ev_mbox;
	int ev_flags;
	bool ev_alert_pending;
	unsigned int ev_vcore;
	void (*ev_handler)(struct event_queue *);
	void *ev_udata;
};

struct event_queue_big {
	struct event_mbox *ev_mbox;
	int ev_flags;
	bool ev_alert_pending;
	unsigned int ev_vcore;
	void (*ev_handler)(struct event_queue *);
	void *ev_udata;
	struct event_mbox ev_imbox;
};

struct preempt_data {
	struct user_context vcore_ctx;
	struct ancillary_state preempt_anc;
	struct user_context uthread_ctx;
	uintptr_t vcore_entry;
	uintptr_t vcore_stack;
	uintptr_t vcore_tls_desc;
	atomic_t flags;
	int rflags;
	bool notif_disabled;
	bool notif_pending;
	struct event_mbox ev_mbox_public;
	struct event_mbox ev_mbox_private;
};

struct procdata_events {
	struct event_queue *kernel_evts[MAX_NR_EVENT];
	struct preempt_data vcore_preempt_data[MAX_NUM_VCORES];
};

#define ROW(t, f, v) printf("    (\"%s\", \"%s\", %zu),\n", t, f, (size_t)(v))
#define SIZE(T)                                                                \
	do {                                                                   \
		ROW(#T, "#size", sizeof(struct T));                            \
		ROW(#T, "#align", __alignof__(struct T));                      \
	} while (0)
#define OFF(T, f) ROW(#T, #f, offsetof(struct T, f))

int main(void)
{
	SIZE(hw_trapframe);
	OFF(hw_trapframe, tf_gsbase);
	OFF(hw_trapframe, tf_fsbase);
	OFF(hw_trapframe, tf_rax);
	OFF(hw_trapframe, tf_rbx);
	OFF(hw_trapframe, tf_rcx);
	OFF(hw_trapframe, tf_rdx);
	OFF(hw_trapframe, tf_rbp);
	OFF(hw_trapframe, tf_rsi);
	OFF(hw_trapframe, tf_rdi);
	OFF(hw_trapframe, tf_r8);
	OFF(hw_trapframe, tf_r9);
	OFF(hw_trapframe, tf_r10);
	OFF(hw_trapframe, tf_r11);
	OFF(hw_trapframe, tf_r12);
	OFF(hw_trapframe, tf_r13);
	OFF(hw_trapframe, tf_r14);
	OFF(hw_trapframe, tf_r15);
	OFF(hw_trapframe, tf_trapno);
	OFF(hw_trapframe, tf_padding5);
	OFF(hw_trapframe, tf_err);
	OFF(hw_trapframe, tf_padding4);
	OFF(hw_trapframe, tf_rip);
	OFF(hw_trapframe, tf_cs);
	OFF(hw_trapframe, tf_padding3);
	OFF(hw_trapframe, tf_padding2);
	OFF(hw_trapframe, tf_rflags);
	OFF(hw_trapframe, tf_rsp);
	OFF(hw_trapframe, tf_ss);
	OFF(hw_trapframe, tf_padding1);
	OFF(hw_trapframe, tf_padding0);

	SIZE(sw_trapframe);
	OFF(sw_trapframe, tf_gsbase);
	OFF(sw_trapframe, tf_fsbase);
	OFF(sw_trapframe, tf_rbx);
	OFF(sw_trapframe, tf_rbp);
	OFF(sw_trapframe, tf_r12);
	OFF(sw_trapframe, tf_r13);
	OFF(sw_trapframe, tf_r14);
	OFF(sw_trapframe, tf_r15);
	OFF(sw_trapframe, tf_rip);
	OFF(sw_trapframe, tf_rsp);
	OFF(sw_trapframe, tf_mxcsr);
	OFF(sw_trapframe, tf_fpucw);
	OFF(sw_trapframe, tf_padding0);

	SIZE(vm_trapframe);
	OFF(vm_trapframe, tf_rax);
	OFF(vm_trapframe, tf_rbx);
	OFF(vm_trapframe, tf_rcx);
	OFF(vm_trapframe, tf_rdx);
	OFF(vm_trapframe, tf_rbp);
	OFF(vm_trapframe, tf_rsi);
	OFF(vm_trapframe, tf_rdi);
	OFF(vm_trapframe, tf_r8);
	OFF(vm_trapframe, tf_r9);
	OFF(vm_trapframe, tf_r10);
	OFF(vm_trapframe, tf_r11);
	OFF(vm_trapframe, tf_r12);
	OFF(vm_trapframe, tf_r13);
	OFF(vm_trapframe, tf_r14);
	OFF(vm_trapframe, tf_r15);
	OFF(vm_trapframe, tf_rip);
	OFF(vm_trapframe, tf_rflags);
	OFF(vm_trapframe, tf_rsp);
	OFF(vm_trapframe, tf_cr2);
	OFF(vm_trapframe, tf_cr3);
	OFF(vm_trapframe, tf_guest_pcoreid);
	OFF(vm_trapframe, tf_flags);
	OFF(vm_trapframe, tf_trap_inject);
	OFF(vm_trapframe, tf_guest_intr_status);
	OFF(vm_trapframe, tf_padding0);
	OFF(vm_trapframe, tf_exit_reason);
	OFF(vm_trapframe, tf_exit_qual);
	OFF(vm_trapframe, tf_intrinfo1);
	OFF(vm_trapframe, tf_intrinfo2);
	OFF(vm_trapframe, tf_guest_va);
	OFF(vm_trapframe, tf_guest_pa);

	SIZE(user_context);
	OFF(user_context, type);
	OFF(user_context, tf);

	SIZE(ancillary_state);
	OFF(ancillary_state, fp_head);
	OFF(ancillary_state, st_mm);
	OFF(ancillary_state, xmm);
	OFF(ancillary_state, fx_reserved);
	OFF(ancillary_state, xstate_bv);
	OFF(ancillary_state, xcomp_bv);
	OFF(ancillary_state, reserv6);
	OFF(ancillary_state, extended_region);

	SIZE(event_msg);
	OFF(event_msg, ev_type);
	OFF(event_msg, ev_arg1);
	OFF(event_msg, ev_arg2);
	OFF(event_msg, ev_arg3);
	OFF(event_msg, ev_arg4);

	SIZE(ucq);
	OFF(ucq, prod_idx);
	OFF(ucq, spare_pg);
	OFF(ucq, nr_extra_pgs);
	OFF(ucq, cons_idx);
	OFF(ucq, prod_overflow);
	OFF(ucq, ucq_ready);
	OFF(ucq, u_lock);

	SIZE(ucq_page_header);
	OFF(ucq_page_header, cons_next_pg);
	OFF(ucq_page_header, nr_cons);

	SIZE(msg_container);
	OFF(msg_container, ev_msg);
	OFF(msg_container, ready);

	/* ucq_page ends in a flexible array: its C size is the header's, so
	 * only the array's offset and the page's capacity are compared. */
	OFF(ucq_page, header);
	OFF(ucq_page, msgs);
	ROW("ucq_page", "#NR_MSG_PER_PAGE", NR_MSG_PER_PAGE);

	SIZE(ceq_event);
	OFF(ceq_event, coalesce);
	OFF(ceq_event, blob_data);
	OFF(ceq_event, idx_posted);
	OFF(ceq_event, user_data);

	SIZE(ceq);
	OFF(ceq, events);
	OFF(ceq, nr_events);
	OFF(ceq, last_recovered);
	OFF(ceq, max_event_ever);
	OFF(ceq, ring);
	OFF(ceq, ring_sz);
	OFF(ceq, operation);
	OFF(ceq, ring_overflowed);
	OFF(ceq, overflow_recovery);
	OFF(ceq, prod_idx);
	OFF(ceq, cons_pub_idx);
	OFF(ceq, cons_pvt_idx);
	OFF(ceq, u_lock);

	SIZE(evbitmap);
	OFF(evbitmap, check_bits);
	OFF(evbitmap, bitmap);

	SIZE(event_mbox);
	OFF(event_mbox, type);
	OFF(event_mbox, ucq);
	OFF(event_mbox, evbm);
	OFF(event_mbox, ceq);

	SIZE(event_queue);
	OFF(event_queue, ev_mbox);
	OFF(event_queue, ev_flags);
	OFF(event_queue, ev_alert_pending);
	OFF(event_queue, ev_vcore);
	OFF(event_queue, ev_handler);
	OFF(event_queue, ev_udata);

	SIZE(event_queue_big);
	OFF(event_queue_big, ev_mbox);
	OFF(event_queue_big, ev_flags);
	OFF(event_queue_big, ev_alert_pending);
	OFF(event_queue_big, ev_vcore);
	OFF(event_queue_big, ev_handler);
	OFF(event_queue_big, ev_udata);
	OFF(event_queue_big, ev_imbox);

	SIZE(preempt_data);
	OFF(preempt_data, vcore_ctx);
	OFF(preempt_data, preempt_anc);
	OFF(preempt_data, uthread_ctx);
	OFF(preempt_data, vcore_entry);
	OFF(preempt_data, vcore_stack);
	OFF(preempt_data, vcore_tls_desc);
	OFF(preempt_data, flags);
	OFF(preempt_data, rflags);
	OFF(preempt_data, notif_disabled);
	OFF(preempt_data, notif_pending);
	OFF(preempt_data, ev_mbox_public);
	OFF(preempt_data, ev_mbox_private);

	SIZE(procdata_events);
	OFF(procdata_events, kernel_evts);
	OFF(procdata_events, vcore_preempt_data);
	ROW("procdata_events", "#MAX_NR_EVENT", MAX_NR_EVENT);
	ROW("procdata_events", "#MAX_NUM_VCORES", MAX_NUM_VCORES);
	return 0;
}
