/* Syscall probe for the seccomp tests: each argument names one call; prints
 * "NAME ok" or "NAME errno=N" per line. Built static with musl-gcc by the test. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1

static long call(const char *name) {
    if (!strcmp(name, "getpid")) return getpid();
    if (!strcmp(name, "unshare-user")) return unshare(CLONE_NEWUSER);
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0);
    if (!strcmp(name, "clone3")) return syscall(SYS_clone3, 0, 0);
    if (!strcmp(name, "vsock")) return socket(40, SOCK_STREAM, 0);
    if (!strcmp(name, "personality-query")) return personality(0xffffffff);
    if (!strcmp(name, "personality-norandom")) return personality(ADDR_NO_RANDOMIZE);
    if (!strcmp(name, "mount")) return mount("none", "/tmp", "tmpfs", 0, 0);
    if (!strcmp(name, "unknown")) return syscall(1000);
    errno = 0;
    fprintf(stderr, "unknown probe %s\n", name);
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = call(argv[i]);
        if (r == -1)
            printf("%s errno=%d\n", argv[i], errno);
        else if (r == -2)
            return 2;
        else
            printf("%s ok\n", argv[i]);
    }
    return 0;
}
