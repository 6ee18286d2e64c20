/*
 * Interrupt entry stubs: one per vector, 16 bytes apart from `isr_stubs`.
 *
 * Each stub makes the stack look the same for every vector (a zero is
 * pushed where the CPU pushes no error code), pushes its vector number and
 * jumps to `isr_common`, which saves the general registers, calls the Rust
 * dispatcher `{dispatch}(&mut InterruptFrame)` and returns with `iretq`.
 * The register order here is the field order of `InterruptFrame` (idt.rs),
 * read from the lowest address up.
 *
 * GS: the kernel finds its per-CPU data through the GS base, ring 3 has a
 * GS base of its own (it may load any GS it likes). So an entry from ring
 * 3 (the saved CS has RPL 3) swaps them first thing (`swapgs`), and the
 * return to ring 3 swaps them back: in ring 0 GS is always the kernel's.
 *
 * `enter_user_asm` / `leave_user_asm` (ring3.rs): a kernel loop enters
 * ring 3 through the same return path, and is returned to when the kernel
 * is done with the ring-3 run.
 */

.section .text
.balign 16
.global isr_stubs
isr_stubs:
.set vector, 0
.rept 256
    .balign 16
    /* Exceptions with a CPU-pushed error code: #DF #TS #NP #SS #GP #PF
       #AC #CP #VC #SX. */
    .if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30
    .else
    pushq $0
    .endif
    pushq $vector
    jmp isr_common
    .set vector, vector + 1
.endr
.balign 16
.global isr_stubs_end
isr_stubs_end:

isr_common:
    testb $3, 24(%rsp)      /* CS (above vector, error code, RIP): ring 3? */
    jz 1f
    swapgs
1:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    /* 15 registers + vector + error code + the CPU's 5-word frame = 176
       bytes, and the CPU 16-byte-aligned RSP before pushing its frame, so
       RSP is 16-byte aligned here as the C ABI wants at a call. */
    mov %rsp, %rdi
    cld
    call {dispatch}
isr_return:                 /* RSP: an InterruptFrame */
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp           /* vector and error code */
    testb $3, 8(%rsp)       /* the CS we return to: ring 3? */
    jz 2f
    swapgs
2:
    iretq

/* u64 enter_user_asm(const InterruptFrame *frame): interrupts off. */
.global enter_user_asm
enter_user_asm:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %gs:{resume_rsp}
    /* The frame goes to the top of the trap stack (TSS RSP0), where the
       CPU puts the frame of an entry from ring 3. */
    mov %rdi, %rsi
    mov %gs:{trap_top}, %rdi
    sub $176, %rdi
    mov %rdi, %rsp
    mov $22, %ecx
    cld
    rep movsq
    jmp isr_return

/* void leave_user_asm(u64 reason): back into enter_user_asm's caller. */
.global leave_user_asm
leave_user_asm:
    mov %rdi, %rax
    mov %gs:{resume_rsp}, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
