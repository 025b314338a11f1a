// Brings the test infrastructure up and down: installs what is missing (cached outside the repo),
// starts every service on loopback on free ports, and records their coordinates in a state file.
// A service that cannot be had is recorded as unavailable with the reason; the others still start.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDebianGroups } from "../../scripts/system/debian.ts";
import { isAlive, stopDaemon } from "./proc.ts";
import type { InfraContext, InfraCoordinates, InfraState, ServiceName, StartedService } from "./types.ts";

export const ALL_SERVICES: ServiceName[] = ["kube", "helm", "openbao", "custodia", "registry", "postgres", "node"];

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/**
 * Where `npm run infra up` leaves its state so that test runs and `npm run infra down` find it.
 * KUSTODIA_INFRA_STATE points elsewhere, for a second infrastructure beside a running one.
 */
export const STATE_FILE = process.env.KUSTODIA_INFRA_STATE ?? join(repoRoot, ".infra", "state.json");

export function cacheDir(): string {
  return process.env.KUSTODIA_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kustodia");
}

function selectedServices(): ServiceName[] {
  const only = process.env.KUSTODIA_INFRA_ONLY?.split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  if (!only) return ALL_SERVICES;
  const unknown = only.filter((name) => !ALL_SERVICES.includes(name as ServiceName));
  if (unknown.length > 0)
    throw new Error(`KUSTODIA_INFRA_ONLY: unknown service(s) ${unknown.join(", ")}; known: ${ALL_SERVICES.join(", ")}`);
  return only as ServiceName[];
}

/**
 * The Debian package groups (scripts/system/debian-packages.txt) each service needs. They are
 * installed in one transaction before any service starts; `build`, `runtime-test` and their arm64
 * counterparts too, because the integration tests build and run the shim runtime for both platforms.
 */
const DEBIAN_GROUPS: Record<ServiceName, string[]> = {
  kube: ["kube"],
  helm: [],
  openbao: ["openbao"],
  custodia: ["custodia"],
  registry: ["registry"],
  postgres: ["postgres"],
  node: ["node", "kube", "registry"],
};
const DEBIAN_GROUPS_OF_TESTS = ["build", "runtime-test", "cross-arm64", "runtime-test-arm64"];

type Starter = (ctx: InfraContext, started: InfraCoordinates) => Promise<StartedService<unknown>>;

const starters: Record<ServiceName, Starter> = {
  kube: async (ctx) => (await import("./kube.ts")).startKube(ctx),
  helm: async (ctx) => (await import("./helm.ts")).installHelm(ctx),
  openbao: async (ctx) => (await import("./openbao.ts")).startOpenBao(ctx),
  custodia: async (ctx) => (await import("./custodia.ts")).startCustodia(ctx),
  registry: async (ctx) => (await import("./registry.ts")).startRegistry(ctx),
  postgres: async (ctx) => (await import("./postgres.ts")).startPostgres(ctx),
  node: async (ctx) => (await import("./node.ts")).startNode(ctx),
};

export interface UpResult extends InfraState {
  timingsMs: Record<string, number>;
}

export async function up(): Promise<UpResult> {
  const services = selectedServices();
  const cache = cacheDir();
  mkdirSync(cache, { recursive: true });
  const runDir = mkdtempSync(join(tmpdir(), "kustodia-infra-"));
  const ctx: InfraContext = { runDir, cacheDir: cache };
  const state: UpResult = { runDir, startedAt: new Date().toISOString(), coordinates: {}, unavailable: {}, daemons: [], timingsMs: {} };
  const began = Date.now();

  const t0 = Date.now();
  let debianFailure: string | undefined;
  try {
    ensureDebianGroups(
      [...new Set([...DEBIAN_GROUPS_OF_TESTS, ...services.flatMap((name) => DEBIAN_GROUPS[name])])],
      "the test infrastructure",
    );
  } catch (error) {
    debianFailure = (error as Error).message;
  }
  state.timingsMs.debian = Date.now() - t0;

  const startOne = async (name: ServiceName) => {
    const t0 = Date.now();
    try {
      if (debianFailure && DEBIAN_GROUPS[name].length > 0) throw new Error(debianFailure);
      const started = await starters[name](ctx, state.coordinates);
      (state.coordinates as Record<string, unknown>)[name] = started.coordinates;
      state.daemons.push(...started.daemons);
      if (started.cleanup) state.cleanup = [...(state.cleanup ?? []), ...started.cleanup];
    } catch (error) {
      state.unavailable[name] = error instanceof Error ? error.message : String(error);
      console.error(`[infra] ${name} unavailable: ${state.unavailable[name]}`);
    } finally {
      state.timingsMs[name] = Date.now() - t0;
    }
  };
  await Promise.all(services.map(startOne));

  if (state.coordinates.openbao && state.coordinates.kube) {
    const { configureKubernetesAuth } = await import("./openbao.ts");
    try {
      state.coordinates.openbao = await configureKubernetesAuth(state.coordinates.openbao, state.coordinates.kube);
    } catch (error) {
      state.unavailable.openbao = `kubernetes auth could not be configured: ${(error as Error).message}`;
      delete state.coordinates.openbao;
    }
  }
  if (state.coordinates.openbao && state.coordinates.postgres) {
    const { configureDatabase } = await import("./openbao.ts");
    try {
      state.coordinates.openbao = await configureDatabase(state.coordinates.openbao, state.coordinates.postgres);
    } catch (error) {
      state.unavailable.postgres = `OpenBao's database engine could not be configured against it: ${(error as Error).message}`;
    }
  }
  state.timingsMs.total = Date.now() - began;
  writeFileSync(join(runDir, "state.json"), JSON.stringify(state, null, 2));
  return state;
}

export async function down(state: InfraState, { keepRunDir = false } = {}): Promise<void> {
  // Before the daemons stop: the node's containers and shims are no daemons of ours, and its lock goes last.
  if (state.coordinates.node) await (await import("./node.ts")).stopNode();
  await Promise.all(state.daemons.map((daemon) => stopDaemon(daemon.pid)));
  for (const path of state.cleanup ?? []) rmSync(path, { recursive: true, force: true });
  if (!keepRunDir && process.env.KUSTODIA_INFRA_KEEP !== "1") rmSync(state.runDir, { recursive: true, force: true });
}

/** The state left by `npm run infra up`, if all of its daemons are still alive. */
export function runningState(): InfraState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  const state = JSON.parse(readFileSync(STATE_FILE, "utf8")) as InfraState;
  return state.daemons.every((daemon) => isAlive(daemon.pid)) ? state : undefined;
}

export function saveState(state: InfraState): void {
  mkdirSync(dirname(STATE_FILE), { recursive: true });
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));
}

export function forgetState(): void {
  rmSync(STATE_FILE, { force: true });
}
