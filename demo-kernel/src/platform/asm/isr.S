/*
 * Interrupt entry stubs: one per vector, 16 bytes apart from `isr_stubs`.
 *
 * Each stub makes the stack look the same for every vector (a zero is
 * pushed where the CPU pushes no error code), pushes its vector number and
 * jumps to `isr_common`, which saves the general registers, calls the Rust
 * dispatcher `{dispatch}(&mut InterruptFrame)` and returns with `iretq`.
 * The register order here is the field order of `InterruptFrame` (idt.rs),
 * read from the lowest address up.
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
    iretq
