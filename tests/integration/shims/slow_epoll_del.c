/* LD_PRELOAD shim for test_sigterm_while_connections_churn: every EPOLL_CTL_DEL the main thread
 * makes waits 300 ms first. That is where libmicrohttpd 0.9.75's MHD_quiesce_daemon raced its
 * own event threads (they drop the listening socket from their epoll sets when they see the
 * quiesce flag; its own removal then fails and it aborts the process), so with this shim and
 * new connections arriving the old shutdown failed every time instead of once in hundreds. */
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) {
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
    if (op == EPOLL_CTL_DEL && syscall(SYS_gettid) == getpid())
        usleep(300000);
    return real(epfd, op, fd, event);
}
