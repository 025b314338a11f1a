/*
 * kustodia-shim: the entry point of the portable runtime (/kustodia/kustodia-shim). Built with
 * `gcc -static` by scripts/build-runtime.ts, so it runs in images without any libc.
 *
 * It replaces itself (execve, same PID) with the runtime's Node, the single executable application
 * /kustodia/kustodia-node that carries the bundled shim, passing argv on untouched: argv[0] stays
 * what the container ran and the shim sees exactly its own arguments.
 *
 * The application image's settings for a dynamic loader and for Node (LD_PRELOAD, LD_LIBRARY_PATH,
 * GLIBC_TUNABLES, NODE_OPTIONS, NODE_EXTRA_CA_CERTS, OPENSSL_CONF, ...) are meant for the app, not
 * for the shim's Node, and can break it: a musl library preloaded into glibc's loader, an option this
 * Node does not know, an OpenSSL config naming a missing provider. So every such var is handed over
 * renamed to KUSTODIA_RUNTIME_ENV_<NAME>=<value>, in place, and the shim's prelude
 * (shim/runtime/env-stash.ts) renames it back before anything reads the environment: the app gets
 * them byte for byte and in order. Vars that already carry the prefix are renamed too, so the round
 * trip is exact for every environment.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KUSTODIA_NODE
#define KUSTODIA_NODE "/kustodia/kustodia-node"
#endif
#ifndef KUSTODIA_STASH_PREFIX
#define KUSTODIA_STASH_PREFIX "KUSTODIA_RUNTIME_ENV_"
#endif

/* EX_SOFTWARE, as the shim's own internal errors: the runtime is broken, not the app. */
#define EXIT_RUNTIME_BROKEN 70

static const char *const stashed_prefixes[] = {"LD_", "GLIBC_TUNABLES=", "NODE_", "OPENSSL_", KUSTODIA_STASH_PREFIX};

static int is_stashed(const char *var) {
  for (size_t i = 0; i < sizeof stashed_prefixes / sizeof *stashed_prefixes; i++) {
    if (strncmp(var, stashed_prefixes[i], strlen(stashed_prefixes[i])) == 0) return 1;
  }
  return 0;
}

static void say(const char *text) {
  size_t left = strlen(text);
  while (left > 0) {
    ssize_t written = write(2, text, left);
    if (written <= 0) return;
    text += written;
    left -= (size_t)written;
  }
}

static void fail(const char *what) {
  const char *reason = errno != 0 ? strerror(errno) : NULL;
  say("kustodia-shim: ");
  say(what);
  if (reason != NULL) {
    say(": ");
    say(reason);
  }
  say("\n");
  _exit(EXIT_RUNTIME_BROKEN);
}

int main(int argc, char **argv, char **envp) {
  errno = 0;
  if (argc < 1 || argv[0] == NULL) fail("started without argv[0]");
  size_t count = 0;
  while (envp[count] != NULL) count++;
  char **env = malloc((count + 1) * sizeof *env);
  if (env == NULL) fail("out of memory");
  const size_t prefix_length = strlen(KUSTODIA_STASH_PREFIX);
  for (size_t i = 0; i < count; i++) {
    if (!is_stashed(envp[i])) {
      env[i] = envp[i];
      continue;
    }
    size_t length = strlen(envp[i]);
    char *renamed = malloc(prefix_length + length + 1);
    if (renamed == NULL) fail("out of memory");
    memcpy(renamed, KUSTODIA_STASH_PREFIX, prefix_length);
    memcpy(renamed + prefix_length, envp[i], length + 1);
    env[i] = renamed;
  }
  env[count] = NULL;
  execve(KUSTODIA_NODE, argv, env);
  fail("cannot start " KUSTODIA_NODE);
  return EXIT_RUNTIME_BROKEN;
}
