// `node bench/handler.ts`: what running an exec probe through the shim (`kustodia.io/wrap-exec`)
// adds to each probe run. The probe is `sh -c 'test -n "$X"'` (busybox), run bare with X in its env
// and through the runtime that `npm run build` writes (at /kustodia, as in a pod) as the webhook
// wraps it: `kustodia-shim KUSTODIA_ROLE=probe KUSTODIA_TIMEOUT=500ms -- sh -c ...`, X read from the
// test OpenBao — with a token file (no login: the floor), and with a kubernetes login of a
// ServiceAccount token from the test kube-apiserver (one login and one read, what a pod pays).
// Runs are interleaved (each round runs every contender once, shuffled). Prints a markdown table.
// Needs root (chroot, bind mounts), like bench/shim.ts.
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_RUNTIME_DIR } from "../scripts/build-runtime.ts";
import { RuntimeFile } from "../shim/runtime/layout.ts";
import { ensureServiceAccount, serviceAccountToken } from "../test/infra/kube-api.ts";
import { asRoot, openbaoApi } from "../test/infra/openbao-api.ts";
import type { KubeCoordinates, OpenBaoCoordinates } from "../test/infra/types.ts";
import { ensureBuilt } from "./lib/build.ts";
import { execTimer, type TimedStart, timedStart } from "./lib/exec-timer.ts";
import { acquireInfra } from "./lib/infra.ts";
import { createSecrets } from "./lib/openbao.ts";
import { COMMON_OPTIONS } from "./lib/options.ts";
import { fixed, quantile, shuffled, table } from "./lib/stats.ts";

const { values: options } = parseArgs({
  options: {
    rounds: { type: "string", default: "40" },
    runtime: { type: "string", default: DEFAULT_RUNTIME_DIR },
    ...COMMON_OPTIONS,
  },
});
const ROUNDS = options.quick ? 3 : Number(options.rounds);
const TOKEN_FILE = "/run/secrets/vault-token";
const SA_TOKEN_FILE = "/run/secrets/sa-token";
/** The probe; it ends by exec'ing the timer's app-mark, so that the timer sees the chain run to its end. */
const PROBE = ["/bin/sh", "-c", 'test -n "$X" && exec /bin/app-mark'];
const WORDS = ["KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=500ms"];

interface Contender {
  name: string;
  argv: string[];
  env: Record<string, string>;
}

/** A root with busybox sh, the timer's app-mark and the two credential files. */
function makeRoot(timer: string, vaultToken: string, saToken: string): string {
  const root = mkdtempSync(join(tmpdir(), "kustodia-bench-handler-"));
  chmodSync(root, 0o755);
  for (const dir of ["bin", "kustodia", "proc", "sys", "tmp", "run/secrets"]) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync("/bin/busybox", join(root, "bin/sh"));
  copyFileSync(timer, join(root, "bin/app-mark"));
  for (const file of ["bin/sh", "bin/app-mark"]) chmodSync(join(root, file), 0o755);
  writeFileSync(join(root, TOKEN_FILE), vaultToken, { mode: 0o600 });
  writeFileSync(join(root, SA_TOKEN_FILE), saToken, { mode: 0o600 });
  return root;
}

/** A ServiceAccount token of the test kube-apiserver, and an OpenBao kubernetes role for it that may read `policy`'s paths. */
async function kubernetesLogin(
  openbao: OpenBaoCoordinates,
  kube: KubeCoordinates,
  policy: string,
): Promise<{ role: string; token: string }> {
  const name = `kbench-probe-${randomBytes(4).toString("hex")}`;
  await ensureServiceAccount(kube, name, "probe");
  const token = await serviceAccountToken(kube, name, "probe", { expirationSeconds: 3600 });
  await openbaoApi(asRoot(openbao), "POST", `auth/${openbao.kubernetesAuthMount}/role/${name}`, {
    bound_service_account_names: ["probe"],
    bound_service_account_namespaces: [name],
    token_policies: [policy],
    token_ttl: "1m",
  });
  return { role: name, token };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/handler.ts needs root (chroot and bind mounts)");
  const runtime = resolve(options.runtime);
  if (!options["no-build"] && runtime === DEFAULT_RUNTIME_DIR) ensureBuilt();
  const infra = await acquireInfra(["openbao", "kube"]);
  const openbao = infra.coordinates.openbao as OpenBaoCoordinates | undefined;
  const kube = infra.coordinates.kube as KubeCoordinates | undefined;
  const timer = execTimer();
  const samples = new Map<string, TimedStart[]>();
  let root: string | undefined;
  let contenders: Contender[] = [];
  try {
    if (!openbao || !kube || !openbao.kubernetesAuthMount) throw new Error("OpenBao with kubernetes auth, and kube, are needed");
    const secrets = await createSecrets(openbao, 1);
    const login = await kubernetesLogin(openbao, kube, `${secrets.prefix}-read`);
    root = makeRoot(timer, secrets.token, login.token);
    const shim = (name: string, auth: Record<string, string>): Contender => ({
      name,
      argv: [`/kustodia/${RuntimeFile.launcher}`, ...WORDS, "--", ...PROBE],
      env: {
        PATH: "/bin",
        KUSTODIA_VAULT_ADDR: openbao.addr,
        KUSTODIA_VAULT_KV_MOUNT: secrets.mount,
        SECRET_X: `${secrets.prefix}/s0#value`,
        ...auth,
      },
    });
    contenders = [
      { name: "probe alone", argv: PROBE, env: { PATH: "/bin", X: "value" } },
      shim("through the shim, token file", { KUSTODIA_VAULT_AUTH_METHOD: "token", KUSTODIA_VAULT_TOKEN_FILE: TOKEN_FILE }),
      shim("through the shim, kubernetes login", {
        KUSTODIA_VAULT_AUTH_METHOD: "kubernetes",
        KUSTODIA_VAULT_AUTH_PATH: openbao.kubernetesAuthMount,
        KUSTODIA_VAULT_ROLE: login.role,
        KUSTODIA_SA_TOKEN_FILE: SA_TOKEN_FILE,
      }),
    ];
    const run = (contender: Contender) =>
      timedStart({
        timer,
        root: root as string,
        binds: [`${runtime}:/kustodia`, "/proc:/proc", "/sys:/sys"],
        argv: contender.argv,
        env: contender.env,
      });
    for (const contender of contenders) run(contender); // warm-up: page cache, OpenBao's caches
    for (let round = 0; round < ROUNDS; round++) {
      for (const contender of shuffled(contenders)) samples.set(contender.name, [...(samples.get(contender.name) ?? []), run(contender)]);
    }
  } finally {
    if (root) rmSync(root, { recursive: true, force: true });
    await infra.release();
  }

  const ms = (name: string, q: number, pick: (sample: TimedStart) => number) => quantile((samples.get(name) ?? []).map(pick), q);
  const exit = (sample: TimedStart) => sample.exitUs / 1000;
  const cpu = (sample: TimedStart) => sample.cpuUs / 1000;
  const alone = ms("probe alone", 0.5, exit);
  const rows = contenders.map(({ name }) => [
    name,
    fixed(ms(name, 0.5, exit)),
    fixed(ms(name, 0.99, exit)),
    name === "probe alone" ? "–" : fixed(ms(name, 0.5, exit) - alone),
    fixed(ms(name, 0.5, cpu)),
  ]);
  console.log(`### Exec probe through the shim (${ROUNDS} interleaved rounds)\n`);
  console.log(`Fork to exit of \`sh -c 'test -n "$X"'\` (busybox), in ms; CPU is user + system of the whole chain.\n`);
  console.log(table(["probe run", "p50 ms", "p99 ms", "added p50 ms", "CPU p50 ms"], rows));
  console.log(
    `\nOpenBao ${openbao?.version} (${infra.origin}); runtime ${runtime}${ROUNDS < 10 ? "; a smoke run, too few rounds to compare" : ""}.`,
  );
}

await main();
