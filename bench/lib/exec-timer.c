/*
 * exec-timer: times one start of a secrets shim, from fork to the app running, as a container
 * runtime would start it. Built with `gcc -static` by bench/shim.ts.
 *
 *   exec-timer [--root DIR] [--bind SRC:DST]... -- COMMAND [ARGS...]
 *
 * In a private mount namespace it bind-mounts each SRC (read-only) onto DIR/DST, chroots into DIR
 * (the runtime only runs at /kustodia), then forks and execs COMMAND with exec-timer's own
 * environment. The app at the end of the chain is exec-timer itself, copied into the root under a
 * name ending in "app-mark": it writes the CLOCK_MONOTONIC time it started at to stdout and exits.
 * Prints one line: {"appUs":..,"exitUs":..,"cpuUs":..,"maxRssKiB":..,"status":..}, times since fork;
 * appUs is -1 when the app never ran. cpuUs (user + system) and maxRssKiB (the peak RSS) cover the
 * whole chain: Linux keeps both across execve. The chain's stderr passes through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define APP_MARK "KUSTODIA_BENCH_APP_STARTED "

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "exec-timer: %s: %s\n", what, strerror(errno));
  exit(111);
}

static int ends_with(const char *text, const char *suffix) {
  size_t a = strlen(text), b = strlen(suffix);
  return a >= b && strcmp(text + a - b, suffix) == 0;
}

static void bind_readonly(const char *root, char *spec) {
  char *colon = strchr(spec, ':');
  if (colon == NULL) {
    errno = EINVAL;
    die("--bind wants SRC:DST");
  }
  *colon = '\0';
  char target[4096];
  snprintf(target, sizeof target, "%s%s", root, colon + 1);
  if (mount(spec, target, NULL, MS_BIND | MS_REC, NULL) != 0) die(target);
  if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) != 0) die(target);
}

int main(int argc, char **argv, char **envp) {
  if (ends_with(argv[0], "app-mark")) {
    printf(APP_MARK "%lld\n", now_ns());
    return 0;
  }
  const char *root = NULL;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
      root = argv[++i];
    } else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) {
      i++; /* handled below, once the namespace exists */
    } else {
      fprintf(stderr, "usage: exec-timer [--root DIR] [--bind SRC:DST]... -- COMMAND [ARGS...]\n");
      return 64;
    }
  }
  if (i + 1 >= argc) {
    fprintf(stderr, "exec-timer: no command\n");
    return 64;
  }
  if (root != NULL) {
    if (unshare(CLONE_NEWNS) != 0) die("unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private");
    for (int j = 1; j < i; j++)
      if (strcmp(argv[j], "--bind") == 0) bind_readonly(root, argv[++j]);
    if (chroot(root) != 0) die("chroot");
    if (chdir("/") != 0) die("chdir /");
  }
  char **command = argv + i + 1;

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) die("pipe");
  long long started = now_ns();
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    dup2(out[1], 1);
    execve(command[0], command, envp);
    fprintf(stderr, "exec-timer: %s: %s\n", command[0], strerror(errno));
    _exit(127);
  }
  close(out[1]);
  char buffer[1 << 16];
  size_t used = 0;
  for (;;) {
    ssize_t got = read(out[0], buffer + used, sizeof buffer - 1 - used);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    used += (size_t)got;
    if (used == sizeof buffer - 1) used = 0; /* keep reading; the mark is the last line */
  }
  buffer[used] = '\0';
  int status;
  struct rusage usage;
  if (wait4(child, &status, 0, &usage) < 0) die("wait4");
  long long exited = now_ns();
  long long app = -1;
  char *mark = strstr(buffer, APP_MARK);
  if (mark != NULL) app = (atoll(mark + strlen(APP_MARK)) - started) / 1000;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  long long cpu = (long long)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000LL + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
  printf("{\"appUs\":%lld,\"exitUs\":%lld,\"cpuUs\":%lld,\"maxRssKiB\":%ld,\"status\":%d}\n", app, (exited - started) / 1000, cpu,
         usage.ru_maxrss, code);
  return 0;
}
