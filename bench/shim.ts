// `node bench/shim.ts`: exec → app-running time of kustodia's shim (the portable runtime that
// `npm run build` writes to dist/shim-runtime, at /kustodia as in a pod) next to Bank-Vaults'
// vault-env, with 0/1/10/50 secrets read from the same OpenBao with the same token, directly and
// through a TCP proxy adding 5 ms each way to every backend exchange; their peak RSS; and the size of
// what each puts into a pod. Prints markdown tables. Needs root (chroot, bind mounts).
//
// Each start runs in a root with nothing but the app (exec-timer's "app-mark", which reports the
// moment it runs), vault-env, /proc, /sys and the runtime bind-mounted read-only at /kustodia.
// Starts are interleaved (each round runs every contender once, in a shuffled order), so load from
// other users of the machine hits all of them alike.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { buildRuntime, DEFAULT_RUNTIME_DIR } from "../scripts/build-runtime.ts";
import { RuntimeFile } from "../shim/runtime/layout.ts";
import type { OpenBaoCoordinates } from "../test/infra/types.ts";
import { ensureBuilt } from "./lib/build.ts";
import { execTimer, type TimedStart, timedStart } from "./lib/exec-timer.ts";
import { acquireInfra } from "./lib/infra.ts";
import { type BenchSecrets, createSecrets } from "./lib/openbao.ts";
import { COMMON_OPTIONS } from "./lib/options.ts";
import { PEER_VERSIONS, peerBinary } from "./lib/peers.ts";
import { fixed, median, quantile, ratio, shuffled, table } from "./lib/stats.ts";

const { values: options } = parseArgs({
  options: {
    rounds: { type: "string", default: "30" },
    counts: { type: "string", default: "0,1,10,50" },
    latencies: { type: "string", default: "0,5" },
    runtime: { type: "string", default: DEFAULT_RUNTIME_DIR },
    /** `name=dir`: another runtime to time beside (before/after comparisons). */
    "extra-runtime": { type: "string", multiple: true, default: [] },
    /** Also time "node floor": the same runtime around a shim that does nothing but execve the app. */
    "node-floor": { type: "boolean", default: false },
    /** Also time "http floor": the same runtime around a script that reads the secrets with bare `node:http`, then execs. */
    "http-floor": { type: "boolean", default: false },
    ...COMMON_OPTIONS,
  },
});
const ROUNDS = options.quick ? 3 : Number(options.rounds);
const COUNTS = (options.quick ? "0,2" : options.counts).split(",").map(Number);
const LATENCIES = (options.quick ? "0,5" : options.latencies).split(",").map(Number);
const APP = "/bin/app-mark";
const TOKEN_FILE = "/run/secrets/vault-token";

interface Contender {
  name: string;
  binds: string[];
  argv: string[];
  env: (secrets: BenchSecrets, count: number, addr: string) => Record<string, string>;
}

function kustodia(name: string, runtime: string): Contender {
  return {
    name,
    binds: [`${runtime}:/kustodia`],
    argv: [`/kustodia/${RuntimeFile.launcher}`, "--", APP],
    env: (secrets, count, addr) => ({
      PATH: "/bin",
      KUSTODIA_VAULT_ADDR: addr,
      KUSTODIA_VAULT_AUTH_METHOD: "token",
      KUSTODIA_VAULT_TOKEN_FILE: TOKEN_FILE,
      KUSTODIA_VAULT_KV_MOUNT: secrets.mount,
      ...Object.fromEntries(Array.from({ length: count }, (_, i) => [`SECRET_S${i}`, `${secrets.prefix}/s${i}#value`])),
    }),
  };
}

const vaultEnv: Contender = {
  name: "vault-env",
  binds: [],
  argv: ["/bin/vault-env", APP],
  env: (secrets, count, addr) => ({
    PATH: "/bin",
    VAULT_ADDR: addr,
    VAULT_TOKEN: secrets.token,
    ...Object.fromEntries(Array.from({ length: count }, (_, i) => [`S${i}`, `vault:${secrets.mount}/data/${secrets.prefix}/s${i}#value`])),
  }),
};

const direct: Contender = { name: "app alone", binds: [], argv: [APP], env: () => ({ PATH: "/bin" }) };

/** A root with only the app, vault-env, the token and mount points. */
function makeRoot(timer: string, token: string, vaultEnvBinary: string | undefined): string {
  const root = mkdtempSync(join(tmpdir(), "kustodia-bench-root-"));
  chmodSync(root, 0o755);
  for (const dir of ["bin", "kustodia", "proc", "sys", "tmp", "run/secrets"]) mkdirSync(join(root, dir), { recursive: true });
  chmodSync(join(root, "tmp"), 0o1777);
  copyFileSync(timer, join(root, APP));
  chmodSync(join(root, APP), 0o755);
  if (vaultEnvBinary) copyFileSync(vaultEnvBinary, join(root, "bin/vault-env"));
  writeFileSync(join(root, TOKEN_FILE), token, { mode: 0o600 });
  return root;
}

async function startProxy(target: string, delayMs: number): Promise<{ addr: string; process: ChildProcess }> {
  const url = new URL(target);
  const child = spawn(process.execPath, [join(import.meta.dirname, "lib/proxy-process.ts"), url.hostname, url.port, String(delayMs)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolvePort, reject) => {
    child.stdout?.once("data", (chunk: Buffer) => resolvePort((JSON.parse(chunk.toString("utf8")) as { port: number }).port));
    child.once("exit", (code) => reject(new Error(`the proxy exited with ${code}`)));
  });
  return { addr: `http://127.0.0.1:${port}`, process: child };
}

function bytesIn(dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + statSync(join(entry.parentPath, entry.name)).size, 0);
}

function gzippedTar(dir: string): number {
  const tar = spawnSync("tar", ["-C", dir, "-c", "."], { maxBuffer: 1 << 30 });
  if (tar.status !== 0) throw new Error(`tar ${dir} failed`);
  return gzipSync(tar.stdout).length;
}

const MiB = 2 ** 20;

function sizes(runtime: string, vaultEnvBinary: string | undefined): { markdown: string; runtimeGzipMiB: number } {
  const runtimeBytes = bytesIn(runtime);
  const runtimeGzipMiB = gzippedTar(runtime) / MiB;
  const nodeFile = join(runtime, RuntimeFile.node);
  const rows = [
    ["kustodia runtime (all of dist/shim-runtime: launcher, Node SEA, glibc, tini)", fixed(runtimeBytes / MiB), fixed(runtimeGzipMiB)],
    ["  of which kustodia-node", fixed(statSync(nodeFile).size / MiB), "–"],
  ];
  if (vaultEnvBinary) {
    const bytes = statSync(vaultEnvBinary).size;
    rows.push([
      `vault-env ${PEER_VERSIONS["vault-env"]} (one static binary)`,
      fixed(bytes / MiB),
      fixed(gzippedTar(dirname(vaultEnvBinary)) / MiB),
    ]);
    rows.push(["ratio kustodia/vault-env", ratio(runtimeBytes, bytes), "–"]);
  }
  return { markdown: table(["what lands in the pod", "MiB on disk", "MiB gzipped (tar, gzip -6)"], rows), runtimeGzipMiB };
}

/** The floor scripts' common start: the build's smoke test, then the app's argv. */
const FLOOR_PRELUDE = [
  "const args = process.argv.slice(2);",
  'if (args[0] === "--version") process.exit(0); // build-runtime\'s smoke test',
  'if (args[0] === "--") args.shift();',
];

/** "node floor": the runtime around a script that only execs the app — what Node alone costs. */
const NODE_FLOOR = [...FLOOR_PRELUDE, "process.execve(args[0], args, process.env);"];

/**
 * "http floor": the least a Node shim can do — every `SECRET_*` read at once with plain `node:http`
 * (KV v2, the token file, no retries, no checks, no audit), then exec. What Node plus one round of
 * requests costs; the kustodia rows above it are that plus the shim's own work.
 */
const HTTP_FLOOR = [
  ...FLOOR_PRELUDE,
  "const env = { ...process.env };",
  'const names = Object.keys(env).filter((name) => name.startsWith("SECRET_"));',
  "if (names.length === 0) process.execve(args[0], args, env);",
  'const http = process.getBuiltinModule("node:http");',
  'const token = process.getBuiltinModule("node:fs").readFileSync(env.KUSTODIA_VAULT_TOKEN_FILE, "utf8").trim();',
  "let left = names.length;",
  "for (const name of names) {",
  '  const [path, field] = env[name].split("#");',
  "  const url = `${env.KUSTODIA_VAULT_ADDR}/v1/${env.KUSTODIA_VAULT_KV_MOUNT}/data/${path}`;",
  '  http.get(url, { headers: { "X-Vault-Token": token } }, (response) => {',
  '    let body = "";',
  '    response.setEncoding("utf8");',
  '    response.on("data", (chunk) => (body += chunk));',
  '    response.on("end", () => {',
  "      env[name.slice(7)] = JSON.parse(body).data.data[field];",
  "      delete env[name];",
  "      if (--left === 0) process.execve(args[0], args, env);",
  "    });",
  "  });",
  "}",
];

/** A runtime built exactly like dist/shim-runtime (launcher, prelude, SEA with code cache, glibc) around `script`. */
async function floorRuntime(name: string, script: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "kustodia-bench-floor-"));
  const bundle = join(dir, "floor.mjs");
  writeFileSync(bundle, `${script.join("\n")}\n`);
  try {
    await buildRuntime({ shimBundle: bundle, outDir: join(dir, "runtime"), log: (line) => console.error(`[bench] ${name}: ${line}`) });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return join(dir, "runtime");
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/shim.ts needs root (chroot and bind mounts)");
  const runtime = resolve(options.runtime);
  if (!options["no-build"] && runtime === DEFAULT_RUNTIME_DIR) ensureBuilt();
  const vaultEnvBinary = options["no-peers"] ? undefined : peerBinary("vault-env");
  if (!vaultEnvBinary && !options["no-peers"])
    console.error("[bench] vault-env is not built (bench/install-peers.sh): timing kustodia only");

  const floors = new Map<string, string>();
  if (options["node-floor"] && !options.quick) floors.set("node floor", await floorRuntime("node floor", NODE_FLOOR));
  if (options["http-floor"] && !options.quick) floors.set("http floor", await floorRuntime("http floor", HTTP_FLOOR));
  const infra = await acquireInfra(["openbao"]);
  const timer = execTimer();
  const contenders: Contender[] = [
    direct,
    kustodia("kustodia", runtime),
    ...[...floors].map(([name, dir]) => kustodia(name, dir)),
    ...options["extra-runtime"].map((spec) => {
      const [name = "", dir = ""] = spec.split("=");
      return kustodia(name, resolve(dir));
    }),
    ...(vaultEnvBinary ? [vaultEnv] : []),
  ];
  const proxies: ChildProcess[] = [];
  const results = new Map<string, TimedStart[]>();
  const key = (latency: number, count: number, name: string) => `${latency}/${count}/${name}`;
  let root: string | undefined;
  const openbao = infra.coordinates.openbao as OpenBaoCoordinates | undefined;
  try {
    if (!openbao) throw new Error("OpenBao is unavailable");
    const secrets = await createSecrets(openbao, Math.max(...COUNTS));
    const chroot = makeRoot(timer, secrets.token, vaultEnvBinary);
    root = chroot;
    for (const latency of LATENCIES) {
      let addr = openbao.addr;
      if (latency > 0) {
        const proxy = await startProxy(openbao.addr, latency);
        proxies.push(proxy.process);
        addr = proxy.addr;
      }
      for (const count of COUNTS) {
        const run = (contender: Contender) =>
          timedStart({
            timer,
            root: chroot,
            binds: [...contender.binds, "/proc:/proc", "/sys:/sys"],
            argv: contender.argv,
            env: contender.env(secrets, count, addr),
          });
        for (const contender of contenders) run(contender); // warm-up: page cache, OpenBao's caches
        for (let round = 0; round < ROUNDS; round++) {
          for (const contender of shuffled(contenders)) {
            const samples = results.get(key(latency, count, contender.name)) ?? [];
            samples.push(run(contender));
            results.set(key(latency, count, contender.name), samples);
          }
        }
      }
    }
  } finally {
    for (const proxy of proxies) proxy.stdin?.end();
    if (root) rmSync(root, { recursive: true, force: true });
    for (const dir of floors.values()) rmSync(dirname(dir), { recursive: true, force: true });
    await infra.release();
  }

  const ours = contenders.filter((contender) => contender !== direct && contender !== vaultEnv);
  const stat = (latency: number, count: number, name: string, pick: (sample: TimedStart) => number, q: number) =>
    quantile((results.get(key(latency, count, name)) ?? []).map(pick), q);
  const ms = (sample: TimedStart) => sample.appUs / 1000;
  const header = [
    "secrets",
    "added latency",
    ...ours.flatMap((contender) => [`${contender.name} p50 ms`, `${contender.name} p99 ms`]),
    ...(vaultEnvBinary ? ["vault-env p50 ms", "vault-env p99 ms", "overhead ratio kustodia/vault-env (p50)"] : []),
  ];
  const rows: string[][] = [];
  for (const latency of LATENCIES) {
    for (const count of COUNTS) {
      const floor = stat(latency, count, direct.name, ms, 0.5);
      const row = [String(count), latency > 0 ? `${latency} ms each way` : "none"];
      for (const contender of ours)
        row.push(fixed(stat(latency, count, contender.name, ms, 0.5)), fixed(stat(latency, count, contender.name, ms, 0.99)));
      if (vaultEnvBinary) {
        const theirs = stat(latency, count, vaultEnv.name, ms, 0.5);
        row.push(fixed(theirs), fixed(stat(latency, count, vaultEnv.name, ms, 0.99)));
        row.push(ratio(stat(latency, count, "kustodia", ms, 0.5) - floor, theirs - floor));
      }
      rows.push(row);
    }
  }
  const appAlone = median(
    LATENCIES.flatMap((latency) => COUNTS.flatMap((count) => (results.get(key(latency, count, direct.name)) ?? []).map(ms))),
  );
  const rss = (sample: TimedStart) => sample.maxRssKiB / 1024;
  const cpu = (sample: TimedStart) => sample.cpuUs / 1000;
  const everyone = [...ours, ...(vaultEnvBinary ? [vaultEnv] : [])];
  const rssRows = COUNTS.map((count) => [
    String(count),
    ...everyone.flatMap((contender) => [
      fixed(stat(LATENCIES[0] ?? 0, count, contender.name, rss, 0.5)),
      fixed(stat(LATENCIES[0] ?? 0, count, contender.name, cpu, 0.5)),
    ]),
  ]);

  console.log(`### Shim: exec → app running (${ROUNDS} interleaved rounds per row)\n`);
  console.log(
    `Time from fork until the app runs, in ms (median p50, and p99). The app alone starts in ${fixed(appAlone, 2)} ms; the overhead ratio subtracts that floor from both sides. Secrets: distinct KV v2 paths, one field each, read with the same OpenBao token (kustodia: \`KUSTODIA_VAULT_AUTH_METHOD=token\` + token file; vault-env: \`VAULT_TOKEN\`).\n`,
  );
  console.log(table(header, rows));
  console.log(`\n### Shim: peak RSS and CPU time per start (shim and app, medians, no added latency)\n`);
  console.log(
    table(["secrets", ...everyone.flatMap((contender) => [`${contender.name} peak RSS MiB`, `${contender.name} CPU ms`])], rssRows),
  );
  console.log(`\n### Shim: size\n`);
  const size = sizes(runtime, vaultEnvBinary);
  console.log(size.markdown);
  if (options.summary) {
    const p50 = (latency: number, count: number, name: string) => stat(latency, count, name, ms, 0.5);
    writeFileSync(
      options.summary,
      JSON.stringify(overheads(p50, direct.name, vaultEnvBinary ? vaultEnv.name : undefined, size.runtimeGzipMiB)),
    );
  }
  console.log(
    `\nOpenBao ${openbao.version} (${infra.origin}); runtime ${runtime}${ROUNDS < 10 ? "; a smoke run, too few rounds to compare" : ""}.`,
  );
}

/**
 * The figures for `npm run bench`'s targets table: `overhead_<latency>_<secrets>` (kustodia) and
 * `peerOverhead_<latency>_<secrets>` (vault-env), each the p50 over the app started alone.
 */
function overheads(
  p50: (latency: number, count: number, name: string) => number,
  floorName: string,
  peerName: string | undefined,
  runtimeGzipMiB: number,
): Record<string, number> {
  const numbers: Record<string, number> = { runtimeGzipMiB };
  for (const latency of LATENCIES) {
    for (const count of COUNTS) {
      const floor = p50(latency, count, floorName);
      numbers[`overhead_${latency}_${count}`] = p50(latency, count, "kustodia") - floor;
      numbers[`peerOverhead_${latency}_${count}`] = peerName ? p50(latency, count, peerName) - floor : Number.NaN;
    }
  }
  return numbers;
}

await main();
