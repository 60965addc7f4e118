# i386 syscall probe for the seccomp tests (raw int 0x80, no libc). Exit code: the
# bit mask of failed checks: 1 getpid works, 2 keyctl fails (EPERM: -1), 4 a number
# above the profile's highest fails with ENOSYS (-38), 8 unshare(CLONE_NEWUSER) fails
# (EPERM). MAXP1 is replaced by the test with that number.
.globl _start
.text
_start:
    xor %edi, %edi
    mov $20, %eax
    int $0x80
    cmp $0, %eax
    jg 1f
    or $1, %edi
1:  mov $288, %eax
    mov $1, %ebx
    xor %ecx, %ecx
    int $0x80
    cmp $-1, %eax
    je 2f
    or $2, %edi
2:  mov $MAXP1, %eax
    int $0x80
    cmp $-38, %eax
    je 3f
    or $4, %edi
3:  mov $310, %eax
    mov $0x10000000, %ebx
    int $0x80
    cmp $-1, %eax
    je 4f
    or $8, %edi
4:  mov $1, %eax
    mov %edi, %ebx
    int $0x80
