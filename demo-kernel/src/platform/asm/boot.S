/*
 * Multiboot v1 header and the 32-bit entry of the bootstrap processor.
 *
 * The loader enters `multiboot_entry` in 32-bit protected mode with paging
 * off, EAX = 0x2BADB002 and EBX = the physical address of the Multiboot
 * information. We zero .bss, identity-map the first 4 GiB with 2 MiB pages,
 * switch to long mode and call the Rust entry `{rust_entry}(magic, info)`.
 * Application processors reuse the same page tables and GDT (trampoline.S).
 */

.set MB_MAGIC,       0x1BADB002
/* bit 1: memory information (mem_* and the memory map) please;
   bit 16: the address fields below are valid (the "a.out kludge"), which
   is what lets QEMU's -kernel load an ELF64 file at all. */
.set MB_FLAGS,       (1 << 1) | (1 << 16)
.set MB_CHECKSUM,    -(MB_MAGIC + MB_FLAGS)

.set BOOT_STACK_SIZE, 64 * 1024

.section .multiboot_header, "a"
.balign 4
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long MB_CHECKSUM
    .long multiboot_header      /* header_addr */
    .long __kernel_start        /* load_addr */
    .long __load_end            /* load_end_addr */
    .long __bss_end             /* bss_end_addr */
    .long multiboot_entry       /* entry_addr */

.section .text.boot, "ax"
.code32
.global multiboot_entry
multiboot_entry:
    cli
    cld
    /* Keep the loader's arguments out of the registers string ops use. */
    mov %eax, %ebp
    mov %ebx, %esi

    /* Zero .bss: the page tables and the boot stack live there, and Rust
       expects its zero-initialised statics to be zero. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    mov $boot_stack_top, %esp

    /* Long mode needs CPUID.80000001h:EDX.LM[29]; say so rather than
       triple-faulting on a 32-bit-only CPU model. */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    bt $29, %edx
    jnc no_long_mode

    /* With the MTRRs disabled all of memory is uncacheable (SDM Vol. 3A,
       "MTRR Default Type"), and qboot leaves them disabled (SeaBIOS sets
       them up). TCG ignores memory types, but a hypervisor that honours
       guest MTRRs, or real hardware, would run the kernel uncached. So
       turn them on with write-back as the default type, unless the
       firmware set them up itself. Devices stay uncached through the page
       tables (the top GiB is mapped PCD | PWT below). The trampoline does
       the same on each AP: MTRRs must agree across CPUs. */
    mov $1, %eax
    cpuid
    bt $12, %edx                    /* CPUID.01H:EDX.MTRR */
    jnc 1f
    mov $0x2ff, %ecx                /* IA32_MTRR_DEF_TYPE */
    rdmsr
    bt $11, %eax                    /* E: MTRRs enabled */
    jc 1f
    mov $0x806, %eax                /* E | default type 6 (write-back) */
    xor %edx, %edx
    wrmsr
1:

    /* PML4[0] -> PDPT; PDPT[0..4] -> four page directories. */
    mov $boot_pdpt, %eax
    or $0x3, %eax                   /* present | writable */
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $0x3, %eax
    xor %ecx, %ecx
1:  mov %eax, boot_pdpt(,%ecx,8)
    add $0x1000, %eax
    inc %ecx
    cmp $4, %ecx
    jne 1b

    /* 2048 2 MiB pages: virtual == physical for [0, 4 GiB). The top GiB
       holds the memory-mapped devices (APIC, IOAPIC, PCI holes): map it
       uncached (PCD | PWT) so device accesses are not cached. */
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                  /* present | writable | 2 MiB page */
    cmp $1536, %ecx
    jb 3f
    or $0x18, %eax                  /* PCD | PWT */
3:  mov %eax, boot_pd(,%ecx,8)      /* the high half stays zero (< 4 GiB) */
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    /* The same switch sequence the APs run in trampoline.S. */
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax              /* CR4.PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx           /* IA32_EFER */
    rdmsr
    or $(1 << 8), %eax              /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax            /* CR0.PG | CR0.WP | CR0.PE */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

/* Print a line on COM1 and leave through isa-debug-exit (failure). */
no_long_mode:
    mov $no_lm_msg, %esi
4:  lodsb
    test %al, %al
    jz 5f
    mov $0x3f8, %dx
    outb %al, %dx
    jmp 4b
5:  mov $0xf4, %dx
    mov $0x11, %eax
    outl %eax, %dx
6:  hlt
    jmp 6b

.code64
long_mode_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov %ebp, %edi                  /* magic (zero-extends) */
    mov %esi, %esi                  /* info address (zero-extends) */
    xor %ebp, %ebp                  /* end of the frame-pointer chain */
    call {rust_entry}
7:  cli
    hlt
    jmp 7b

.section .rodata
no_lm_msg:
    .asciz "demo-kernel: FATAL: this CPU has no long mode (64-bit); use a 64-bit CPU model\r\n"

/* The boot GDT: null, 64-bit kernel code (0x08), kernel data (0x10). The
   per-CPU GDTs of gdt.rs replace it once Rust runs; APs load it first. */
.balign 16
.global boot_gdt
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_end:
.global boot_gdt_ptr
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

.section .bss
.balign 4096
.global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
.balign 16
boot_stack_bottom:
    .skip BOOT_STACK_SIZE
.global boot_stack_top
boot_stack_top:
