/*
 * Application-processor start-up trampoline.
 *
 * smp.rs copies the bytes between `ap_trampoline_start` and
 * `ap_trampoline_end` to physical 0x8000 and points the SIPI there (vector
 * 0x08). An AP wakes in 16-bit real mode at 0x0800:0000, so every address
 * below is computed as TRAMP_BASE + (label - ap_trampoline_start), i.e.
 * where the label ends up after the copy, not where it is linked.
 *
 * 16-bit -> load the trampoline GDT, set CR0.PE -> 32-bit -> CR3 (the
 * BSP's page tables), CR4.PAE, EFER.LME, CR0.PG -> 64-bit -> load the
 * stack and CPU index from the parameter block -> call the Rust entry.
 * The parameter block (`ap_trampoline_params`, `TrampolineParams` in
 * smp.rs) is filled in by the BSP before each SIPI.
 */

.set TRAMP_BASE, 0x8000

.section .rodata.ap_trampoline, "a"
.balign 16
.global ap_trampoline_start
ap_trampoline_start:
.code16
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    lgdtl TRAMP_BASE + tramp_gdt_ptr - ap_trampoline_start
    mov %cr0, %eax
    or $1, %eax                         /* CR0.PE */
    mov %eax, %cr0
    ljmpl $0x18, $(TRAMP_BASE + tramp32 - ap_trampoline_start)

.code32
tramp32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    /* MTRRs as on the BSP (boot.S): write-back default if firmware left
       them off. */
    mov $1, %eax
    cpuid
    bt $12, %edx
    jnc 2f
    mov $0x2ff, %ecx
    rdmsr
    bt $11, %eax
    jc 2f
    mov $0x806, %eax
    xor %edx, %edx
    wrmsr
2:
    mov TRAMP_BASE + param_cr3 - ap_trampoline_start, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax                  /* CR4.PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx               /* IA32_EFER */
    rdmsr
    or $(1 << 8), %eax                  /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $0x80010000, %eax                /* CR0.PG | CR0.WP */
    mov %eax, %cr0
    ljmp $0x08, $(TRAMP_BASE + tramp64 - ap_trampoline_start)

.code64
tramp64:
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov TRAMP_BASE + param_stack - ap_trampoline_start, %rsp
    mov TRAMP_BASE + param_cpu - ap_trampoline_start, %rdi
    mov TRAMP_BASE + param_entry - ap_trampoline_start, %rax
    xor %ebp, %ebp
    call *%rax                          /* never returns */
1:  cli
    hlt
    jmp 1b

/* null, 64-bit code 0x08, data 0x10, 32-bit code 0x18 (for the hop from
   real mode: the 64-bit code descriptor cannot run 32-bit code). */
.balign 8
tramp_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0x00CF9A000000FFFF
tramp_gdt_end:
tramp_gdt_ptr:
    .word tramp_gdt_end - tramp_gdt - 1
    .long TRAMP_BASE + tramp_gdt - ap_trampoline_start

.balign 8
.global ap_trampoline_params
ap_trampoline_params:
param_cr3:   .quad 0
param_stack: .quad 0
param_entry: .quad 0
param_cpu:   .quad 0
.global ap_trampoline_end
ap_trampoline_end:
