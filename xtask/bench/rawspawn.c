// The raw-C columns of `cargo xtask bench`'s engine section (xtask/src/bench/engine.rs):
// the physical limit of spawn-and-wait on this machine, with no runtime in the way.
// Compiled at bench time with `cc -O2` into target/.
//
// usage: rawspawn MODE KINDS N WARMUP CONCURRENCY BIG_GIB
//
//   MODE         posix_spawn | vfork | vfork-epoll (vfork, then the wait an event loop does:
//                pidfd_open, epoll_wait until it is readable, then waitpid; one epoll per
//                thread — the floor of any async spawn-and-wait)
//   KINDS        comma-separated, each one of:
//                  plain     stdin, stdout, stderr on /dev/null
//                  detached  the same, in a new session (POSIX_SPAWN_SETSID / setsid())
//                  fd        the same plus one end of a fresh pipe at fd 3
//                  ipc       the same plus one end of a fresh socketpair at fd 3
//                  sh        `/bin/sh -c /bin/true` instead, stdio as plain: the shell's own
//                            cost, the floor of any `exec` (the exec section uses it)
//   N            timed spawns per kind (after WARMUP untimed ones)
//   CONCURRENCY  threads, each spawning /bin/true and waiting for it, pulling from one counter
//   BIG_GIB      first allocate this many GiB and write one byte per 4 KiB page (0: none)
//
// Prints one JSON line per kind (cpu_ns: this process's user + system time while timed):
//   {"kind":"plain","spawns":N,"elapsed_ns":T,"vmhwm_kb":K,"cpu_ns":C}
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum kind { PLAIN, DETACHED, FD, IPC, SH };

static char *TRUE_ARGV[] = {"/bin/true", NULL};
static char *SH_ARGV[] = {"/bin/sh", "-c", "/bin/true", NULL};

static char **argv_of(enum kind k) { return k == SH ? SH_ARGV : TRUE_ARGV; }
static int use_vfork;
static int use_epoll;
static __thread int thread_epoll = -1;
static int devnull;
static enum kind current;
static atomic_long next_spawn;
static long total;

static void die(const char *what) {
  perror(what);
  exit(1);
}

// The fd the child gets at fd 3 (-1: none); `keep` is the parent's end, closed after wait.
static void make_extra(enum kind k, int *child_end, int *keep) {
  int fds[2];
  *child_end = -1;
  *keep = -1;
  if (k == FD) {
    if (pipe2(fds, O_CLOEXEC) != 0) die("pipe2");
    *keep = fds[0];
    *child_end = fds[1];
  } else if (k == IPC) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) die("socketpair");
    *keep = fds[0];
    *child_end = fds[1];
  }
}

static pid_t spawn_posix(enum kind k, int extra) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  pid_t pid;
  char **argv = argv_of(k);
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, devnull, 1);
  posix_spawn_file_actions_adddup2(&fa, devnull, 2);
  if (extra >= 0) posix_spawn_file_actions_adddup2(&fa, extra, 3);
  if (k == DETACHED) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  int err = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    errno = err;
    die("posix_spawn");
  }
  return pid;
}

static pid_t spawn_vfork(enum kind k, int extra) {
  char **argv = argv_of(k);
  pid_t pid = vfork();
  if (pid < 0) die("vfork");
  if (pid == 0) {
    // The child shares the parent's memory until execve: only async-signal-safe calls.
    if (k == DETACHED && setsid() < 0) _exit(126);
    if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0) _exit(126);
    if (extra >= 0 && dup2(extra, 3) < 0) _exit(126);
    execve(argv[0], argv, environ);
    _exit(127);
  }
  return pid;
}

static void once(enum kind k) {
  int extra, keep;
  make_extra(k, &extra, &keep);
  pid_t pid = use_vfork ? spawn_vfork(k, extra) : spawn_posix(k, extra);
  if (extra >= 0) close(extra);
  if (use_epoll) {
    if (thread_epoll < 0 && (thread_epoll = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) die("pidfd_open");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = pidfd};
    if (epoll_ctl(thread_epoll, EPOLL_CTL_ADD, pidfd, &ev) != 0) die("epoll_ctl");
    struct epoll_event got;
    while (epoll_wait(thread_epoll, &got, 1, -1) < 0) {
      if (errno != EINTR) die("epoll_wait");
    }
    if (epoll_ctl(thread_epoll, EPOLL_CTL_DEL, pidfd, NULL) != 0) die("epoll_ctl");
    close(pidfd);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid");
  }
  if (keep >= 0) close(keep);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "rawspawn: %s ended with status %d\n", argv_of(k)[0], status);
    exit(1);
  }
}

static void *loop(void *arg) {
  (void)arg;
  while (atomic_fetch_add(&next_spawn, 1) < total) once(current);
  return NULL;
}

static void run(enum kind k, long n, int concurrency) {
  pthread_t threads[64];
  current = k;
  total = n;
  atomic_store(&next_spawn, 0);
  if (concurrency == 1) {
    loop(NULL);
    return;
  }
  for (int i = 0; i < concurrency; i++)
    if (pthread_create(&threads[i], NULL, loop, NULL) != 0) die("pthread_create");
  for (int i = 0; i < concurrency; i++) pthread_join(threads[i], NULL);
}

static long vmhwm_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static int64_t cpu_ns(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr,
            "usage: rawspawn posix_spawn|vfork|vfork-epoll KINDS N WARMUP CONCURRENCY BIG_GIB\n");
    return 2;
  }
  if (strcmp(argv[1], "vfork") == 0) use_vfork = 1;
  else if (strcmp(argv[1], "vfork-epoll") == 0) use_vfork = use_epoll = 1;
  else if (strcmp(argv[1], "posix_spawn") != 0) {
    fprintf(stderr, "rawspawn: unknown mode %s\n", argv[1]);
    return 2;
  }
  long n = atol(argv[3]);
  long warmup = atol(argv[4]);
  int concurrency = atoi(argv[5]);
  long big_gib = atol(argv[6]);
  if (n < 1 || warmup < 0 || concurrency < 1 || concurrency > 64 || big_gib < 0) {
    fprintf(stderr, "rawspawn: bad arguments\n");
    return 2;
  }
  devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) die("/dev/null");
  // Keep fd 3 taken, so a pipe or socket end is never created at fd 3 itself (a dup2 onto
  // itself would leave its close-on-exec flag set).
  if (devnull < 3 && fcntl(devnull, F_DUPFD_CLOEXEC, 3) < 0) die("F_DUPFD");

  if (big_gib > 0) {
    size_t len = (size_t)big_gib << 30;
    unsigned char *mem = malloc(len);
    if (!mem) die("malloc");
    for (size_t i = 0; i < len; i += 4096) mem[i] = 1;
    // Keep the memory reachable (and the writes observable) for the whole run.
    __asm__ volatile("" : : "r"(mem) : "memory");
  }

  char *kinds = strdup(argv[2]);
  for (char *name = strtok(kinds, ","); name; name = strtok(NULL, ",")) {
    enum kind k;
    if (strcmp(name, "plain") == 0) k = PLAIN;
    else if (strcmp(name, "detached") == 0) k = DETACHED;
    else if (strcmp(name, "fd") == 0) k = FD;
    else if (strcmp(name, "ipc") == 0) k = IPC;
    else if (strcmp(name, "sh") == 0) k = SH;
    else {
      fprintf(stderr, "rawspawn: unknown kind %s\n", name);
      return 2;
    }
    if (warmup > 0) run(k, warmup, concurrency);
    int64_t start = now_ns(), cpu_start = cpu_ns();
    run(k, n, concurrency);
    int64_t elapsed = now_ns() - start, cpu = cpu_ns() - cpu_start;
    printf("{\"kind\":\"%s\",\"spawns\":%ld,\"elapsed_ns\":%lld,\"vmhwm_kb\":%ld,\"cpu_ns\":%lld}\n",
           name, n, (long long)elapsed, vmhwm_kb(), (long long)cpu);
    fflush(stdout);
  }
  free(kinds);
  return 0;
}
