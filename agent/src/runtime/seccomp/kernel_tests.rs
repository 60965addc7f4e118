//! The compiled filter installed in a forked child of the test process: the kernel
//! itself judges each syscall (the native ABI of the host running the tests).

use super::*;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs `checks` in a forked child under `prog`; returns the child's exit code, a
/// bit mask of the failed checks.
fn in_filtered_child(prog: &[SockFilter], checks: fn() -> i32) -> i32 {
    // SAFETY: the child only makes raw syscalls and `_exit`s (no allocation, no
    // lock), so the threads of the test harness cannot leave it a held lock.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            // SAFETY: plain prctl; `install` only reads `prog`.
            let code = unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(100);
                }
                if install(prog).is_err() {
                    libc::_exit(101);
                }
                checks()
            };
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }
}

fn default_caps() -> Vec<String> {
    crate::runtime::caps::ECS_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| (*c).to_string())
        .collect()
}

/// Checks under the filter for ECS's default capabilities (no CAP_SYS_ADMIN).
fn default_checks() -> i32 {
    let mut failed = 0;
    let mut check = |bit: i32, ok: bool| {
        if !ok {
            failed |= 1 << bit;
        }
    };
    let max = HostArch::current()
        .map(|h| h.abis()[0].max_known())
        .unwrap_or(0);
    // SAFETY: each call passes plain integers or null pointers the kernel checks.
    unsafe {
        check(0, libc::getpid() > 0);
        check(
            1,
            libc::unshare(libc::CLONE_NEWUTS) == -1 && errno() == libc::EPERM,
        );
        check(
            2,
            libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0) == -1 && errno() == libc::EPERM,
        );
        check(
            3,
            libc::syscall(i64::from(max) + 1) == -1 && errno() == libc::ENOSYS,
        );
        check(
            4,
            libc::syscall(libc::SYS_clone3, 0, 0) == -1 && errno() == libc::ENOSYS,
        );
        check(5, libc::personality(0xffff_ffff) >= 0);
        check(
            6,
            libc::personality(0x0040_0000) == -1 && errno() == libc::EPERM,
        );
        check(
            7,
            libc::socket(40, libc::SOCK_STREAM, 0) == -1 && errno() == libc::EPERM,
        );
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        check(8, fd >= 0);
        libc::close(fd);
        let r = libc::syscall(
            libc::SYS_clone,
            libc::CLONE_NEWUSER | libc::SIGCHLD,
            0,
            0,
            0,
            0,
        );
        check(9, r == -1 && errno() == libc::EPERM);
        let mount = libc::mount(
            c"none".as_ptr(),
            c"/mnt".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        );
        check(10, mount == -1 && errno() == libc::EPERM);
        // A plain fork (clone without namespace flags) still works.
        match libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) {
            0 => libc::_exit(0),
            -1 => check(11, false),
            child => {
                let mut st = 0;
                check(11, libc::waitpid(child as i32, &mut st, 0) == child as i32);
            }
        }
    }
    failed
}

#[test]
fn seccomp_kernel_enforces_the_default_profile() {
    let prog = program_for(&SeccompMode::DockerDefault {
        capabilities: default_caps(),
    })
    .expect("compiles")
    .expect("a program");
    assert_eq!(
        in_filtered_child(&prog, default_checks),
        0,
        "failed checks (bit mask)"
    );
}

/// Checks under the filter with CAP_SYS_ADMIN: clone3 and unshare reach the kernel.
fn sys_admin_checks() -> i32 {
    let mut failed = 0;
    // SAFETY: null/zero arguments the kernel validates.
    unsafe {
        // clone3(NULL, 0) is refused by the kernel itself (EINVAL), not ENOSYS.
        if !(libc::syscall(libc::SYS_clone3, 0, 0) == -1 && errno() == libc::EINVAL) {
            failed |= 1;
        }
        if libc::unshare(libc::CLONE_NEWUTS) != 0 {
            failed |= 2;
        }
    }
    failed
}

#[test]
fn seccomp_kernel_lets_sys_admin_through() {
    let mut caps = default_caps();
    caps.push("CAP_SYS_ADMIN".into());
    let prog = program_for(&SeccompMode::DockerDefault { capabilities: caps })
        .expect("compiles")
        .expect("a program");
    assert_eq!(
        in_filtered_child(&prog, sys_admin_checks),
        0,
        "failed checks (bit mask)"
    );
}

#[test]
fn seccomp_unconfined_has_no_program() {
    assert!(program_for(&SeccompMode::Unconfined).expect("ok").is_none());
}
