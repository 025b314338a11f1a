import { describe, expect, it } from "vitest";
import { type IssuedReference, issuanceKey, type SecretReference } from "../common/reference.ts";
import { createLog } from "./log.ts";
import { createResolver, formatProblem, isUnavailableOnly, planReferences, type ReferenceVar, type SourceOpener } from "./resolve.ts";
import type { Clock } from "./retry.ts";
import { type LeaseIssuer, type Secret, type SecretSource, SourceError } from "./sources/source.ts";

const settings = { prefix: "SECRET_", passthrough: ["SECRET_KEY"], backend: "vault" as const };
const quiet = createLog("error", () => undefined);

/** An in-memory backend: secrets by path; `failures` makes the first N reads of a path fail. */
class MemorySource implements SecretSource {
  reads: string[] = [];
  readonly secrets: Record<string, Record<string, string>>;
  readonly failures: Record<string, SourceError[]>;
  constructor(secrets: Record<string, Record<string, string>>, failures: Record<string, SourceError[]> = {}) {
    this.secrets = secrets;
    this.failures = failures;
  }
  readKey(reference: SecretReference): string {
    return `${reference.version ?? ""}:${reference.path}`;
  }
  describe(reference: SecretReference): string {
    return `memory secret ${reference.path}`;
  }
  async read(reference: SecretReference): Promise<Secret> {
    this.reads.push(reference.path);
    const failure = this.failures[reference.path]?.shift();
    if (failure) throw failure;
    const secret = this.secrets[reference.path];
    if (!secret) throw new SourceError("missing", `not found: memory secret ${reference.path}`);
    return { fields: new Map(Object.entries(secret)), info: { at: 0 } };
  }
}

/** A clock whose sleeps advance time at once. */
function fakeClock(): Clock & { slept: number[] } {
  let now = 1_000_000;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    random: () => 0.5,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

function plan(env: Record<string, string>): ReferenceVar[] {
  const planned = planReferences(env, settings);
  expect(planned.problems).toEqual([]);
  return planned.references;
}

describe("planReferences", () => {
  it("finds the reference vars, parses them and applies the default backend", () => {
    const planned = planReferences({ SECRET_DB: "app/db#pw", SECRET_C: "custodia:app/key", SECRET_KEY: "plain", OTHER: "x" }, settings);
    expect(planned.problems).toEqual([]);
    expect(planned.references).toEqual([
      { name: "SECRET_C", raw: "custodia:app/key", target: "C", reference: { backend: "custodia", path: "app", field: "key" } },
      { name: "SECRET_DB", raw: "app/db#pw", target: "DB", reference: { backend: "vault", path: "app/db", field: "pw" } },
    ]);
  });

  it.each<{ name: string; env: Record<string, string>; kind: string; reason: string }>([
    {
      name: "malformed reference",
      env: { SECRET_A: "nofield" },
      kind: "malformed",
      reason: "invalid reference: needs a secret and a field",
    },
    { name: "collision", env: { SECRET_A: "x/y", A: "set" }, kind: "collision", reason: "A is already set in the container's env" },
    { name: "invalid name", env: { SECRET_1A: "x/y" }, kind: "malformed", reason: '"1A" is not a valid env var name' },
    { name: "empty name", env: { SECRET_: "x/y" }, kind: "malformed", reason: "no name after the prefix SECRET_" },
    {
      name: "kustodia's own name",
      env: { SECRET_KUSTODIA_X: "x/y" },
      kind: "malformed",
      reason: "names starting with KUSTODIA_ are kustodia's own",
    },
    {
      name: "reference var as target",
      env: { SECRET_SECRET_A: "x/y", SECRET_A: "x/z" },
      kind: "collision",
      reason: "SECRET_A is already set",
    },
  ])("reports a $name as a problem", ({ env, kind, reason }) => {
    const [problem] = planReferences(env, settings).problems;
    expect(problem?.kind).toBe(kind);
    expect(problem?.reason).toContain(reason);
  });
});

describe("formatProblem", () => {
  it("names the var, the reference and the reason", () => {
    expect(formatProblem({ name: "SECRET_A", raw: "app/a", kind: "missing", reason: "not found: x" })).toBe(
      'SECRET_A (reference "app/a"): not found: x',
    );
  });
});

describe("createResolver", () => {
  const opener =
    (source: SecretSource): SourceOpener =>
    async () =>
      source;

  it("reads each distinct secret once, whatever number of vars use it", async () => {
    const source = new MemorySource({ app: { a: "1", b: "2" }, other: { c: "3" } });
    const resolver = createResolver(opener(source), { ignoreMissing: false, log: quiet, clock: fakeClock() });
    const resolution = await resolver.resolve(
      plan({ SECRET_A: "app/a", SECRET_B: "app#b", SECRET_A2: "app/a", SECRET_C: "other/c" }),
      2_000_000,
    );
    expect(resolution.problems).toEqual([]);
    expect(Object.fromEntries(resolution.values)).toEqual({ A: "1", B: "2", A2: "1", C: "3" });
    expect(source.reads.sort()).toEqual(["app", "other"]);
  });

  it("reads all secrets concurrently", async () => {
    let inFlight = 0;
    let most = 0;
    const source = new MemorySource({});
    source.read = async (reference) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 10));
      inFlight--;
      return { fields: new Map([["f", reference.path]]), info: { at: 0 } };
    };
    const env = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`SECRET_V${i}`, `s${i}/f`]));
    const resolution = await createResolver(opener(source), { ignoreMissing: false, log: quiet }).resolve(plan(env), Date.now() + 5000);
    expect(resolution.values.size).toBe(20);
    expect(most).toBe(20);
  });

  it("retries transient failures with growing, jittered delays and then succeeds", async () => {
    const transient = () => new SourceError("transient", "ECONNREFUSED");
    const source = new MemorySource({ app: { a: "1" } }, { app: [transient(), transient(), transient()] });
    const clock = fakeClock();
    const resolution = await createResolver(opener(source), { ignoreMissing: false, log: quiet, clock }).resolve(
      plan({ SECRET_A: "app/a" }),
      clock.now() + 30_000,
    );
    expect(resolution.values.get("A")).toBe("1");
    expect(clock.slept).toEqual([38, 75, 150]);
  });

  it("gives up at the deadline and reports the backend unavailable", async () => {
    const source = new MemorySource(
      {},
      { app: Array.from({ length: 100 }, () => new SourceError("transient", "vault GET /v1/x: ECONNREFUSED")) },
    );
    const clock = fakeClock();
    const start = clock.now();
    const resolution = await createResolver(opener(source), { ignoreMissing: false, log: quiet, clock }).resolve(
      plan({ SECRET_A: "app/a" }),
      start + 2000,
    );
    expect(clock.now() - start).toBe(2000);
    expect(resolution.problems).toEqual([
      {
        name: "SECRET_A",
        raw: "app/a",
        kind: "unavailable",
        reason: "backend unreachable within 2.0 s (6 attempts): vault GET /v1/x: ECONNREFUSED",
      },
    ]);
    expect(isUnavailableOnly(resolution.problems)).toBe(true);
  });

  it.each(["missing", "denied", "malformed", "config"] as const)("does not retry a %s failure", async (kind) => {
    const source = new MemorySource({}, { app: [new SourceError(kind, `${kind}!`)] });
    const clock = fakeClock();
    const resolution = await createResolver(opener(source), { ignoreMissing: false, log: quiet, clock }).resolve(
      plan({ SECRET_A: "app/a" }),
      clock.now() + 2000,
    );
    expect(resolution.problems.map((problem) => [problem.kind, problem.reason])).toEqual([[kind, `${kind}!`]]);
    expect(clock.slept).toEqual([]);
    expect(isUnavailableOnly(resolution.problems)).toBe(false);
  });

  it("reports a missing field of an existing secret as missing", async () => {
    const resolver = createResolver(opener(new MemorySource({ app: { a: "1" } })), { ignoreMissing: false, log: quiet });
    const resolution = await resolver.resolve(plan({ SECRET_B: "app/b" }), Date.now() + 1000);
    expect(resolution.problems).toEqual([
      { name: "SECRET_B", raw: "app/b", kind: "missing", reason: 'field "b" not found in memory secret app' },
    ]);
  });

  it("leaves missing secrets out with ignoreMissing, but keeps other problems", async () => {
    const source = new MemorySource({ app: { a: "1" } }, { denied: [new SourceError("denied", "no")] });
    const resolver = createResolver(opener(source), { ignoreMissing: true, log: quiet });
    const resolution = await resolver.resolve(
      plan({ SECRET_A: "app/a", SECRET_M: "gone/x", SECRET_F: "app/nofield", SECRET_D: "denied/x" }),
      Date.now() + 1000,
    );
    expect(Object.fromEntries(resolution.values)).toEqual({ A: "1" });
    expect(resolution.ignored.map((problem) => problem.name)).toEqual(["SECRET_F", "SECRET_M"]);
    expect(resolution.problems.map((problem) => problem.name)).toEqual(["SECRET_D"]);
  });

  it("reports a backend that cannot be opened for each of its references, without retrying", async () => {
    const resolver = createResolver(
      async () => {
        throw new SourceError("config", "vault backend: KUSTODIA_VAULT_ADDR is not set");
      },
      { ignoreMissing: false, log: quiet },
    );
    const resolution = await resolver.resolve(plan({ SECRET_A: "app/a", SECRET_B: "other/b" }), Date.now() + 1000);
    expect(resolution.problems.map((problem) => [problem.name, problem.kind, problem.reason])).toEqual([
      ["SECRET_A", "config", "vault backend: KUSTODIA_VAULT_ADDR is not set"],
      ["SECRET_B", "config", "vault backend: KUSTODIA_VAULT_ADDR is not set"],
    ]);
  });

  it("opens each backend once across resolutions and exposes the opened sources", async () => {
    let opened = 0;
    const source = new MemorySource({ app: { a: "1" } });
    const resolver = createResolver(
      async () => {
        opened++;
        return source;
      },
      { ignoreMissing: false, log: quiet },
    );
    await resolver.resolve(plan({ SECRET_A: "app/a" }), Date.now() + 1000);
    await resolver.resolve(plan({ SECRET_A: "app/a" }), Date.now() + 1000);
    expect(opened).toBe(1);
    expect(await resolver.sources()).toEqual([source]);
  });
});

/** A source that issues: each issuance is a new certificate/key pair numbered by the request count. */
class IssuingSource extends MemorySource implements LeaseIssuer {
  issues: string[] = [];
  async renew(): Promise<number> {
    return 61_000;
  }
  async release(): Promise<void> {}
  keepAlive(): () => void {
    return () => {};
  }
  onCredentialReplaced(): void {}
  async issue(reference: IssuedReference): Promise<Secret> {
    this.issues.push(issuanceKey(reference));
    const n = this.issues.length;
    return {
      fields: new Map([
        ["certificate", `cert-${n}`],
        ["private_key", `key-${n}`],
        ["ca_chain", "ca-1\nca-2"],
      ]),
      info: { at: 1000, expiresAt: 61_000, serial: `0${n}` },
    };
  }
}

describe("issued references", () => {
  const identity = { "pod.name": "web-0", "pod.namespace": "shop", "pod.serviceAccount": "web" };
  const issuedEnv = {
    SECRET_TLS_CRT: "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc&ttl=1h#certificate",
    SECRET_TLS_KEY: "issue:pki/issue/web?ttl=1h&common_name={pod.name}.{pod.namespace}.svc#private_key",
    SECRET_CA: "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc&ttl=1h#ca_chain",
  };

  it("fills the placeholders from the pod's identity and always uses Vault", () => {
    const planned = planReferences({ SECRET_CRT: issuedEnv.SECRET_TLS_CRT }, { ...settings, backend: "custodia" }, identity);
    expect(planned.problems).toEqual([]);
    expect(planned.references[0]?.reference).toEqual({
      kind: "issued",
      backend: "vault",
      path: "pki/issue/web",
      parameters: [
        { name: "common_name", value: "web-0.shop.svc" },
        { name: "ttl", value: "1h" },
      ],
      field: "certificate",
    });
  });

  it("reports a placeholder the pod's identity cannot fill, naming the vars that would", () => {
    const [problem] = planReferences({ SECRET_CRT: issuedEnv.SECRET_TLS_CRT }, settings, { "pod.name": "web-0" }).problems;
    expect(problem?.kind).toBe("config");
    expect(problem?.reason).toContain("the pod's identity for {pod.namespace} is unknown: set KUSTODIA_POD_NAMESPACE");
  });

  it("warns when vars issue from one path with different parameters", () => {
    const planned = planReferences(
      { SECRET_CRT: "issue:pki/issue/web?common_name=a.svc#certificate", SECRET_KEY2: "issue:pki/issue/web?common_name=b.svc#private_key" },
      settings,
    );
    expect(planned.warnings).toEqual([
      "SECRET_CRT / SECRET_KEY2 issue from pki/issue/web with different parameters: they get 2 separate issuances (a certificate and a key from different issuances do not match)",
    ]);
    expect(planReferences(issuedEnv, settings, identity).warnings).toEqual([]);
  });

  it("serves every var naming the same issuance from one response", async () => {
    const source = new IssuingSource({});
    const resolver = createResolver(async () => source, { ignoreMissing: false, log: quiet });
    const planned = planReferences(issuedEnv, settings, identity);
    const resolution = await resolver.resolve(planned.references, Date.now() + 1000);
    expect(resolution.problems).toEqual([]);
    expect(source.issues).toEqual(["issue:pki/issue/web?common_name=web-0.shop.svc&ttl=1h"]);
    expect(Object.fromEntries(resolution.values)).toEqual({ TLS_CRT: "cert-1", TLS_KEY: "key-1", CA: "ca-1\nca-2" });
    expect(resolution.groups).toEqual([{ refs: planned.references, info: { at: 1000, expiresAt: 61_000, serial: "01" } }]);
  });

  it("issues anew at every resolution (rotation re-issues through it)", async () => {
    const source = new IssuingSource({});
    const resolver = createResolver(async () => source, { ignoreMissing: false, log: quiet });
    const references = planReferences(issuedEnv, settings, identity).references;
    await resolver.resolve(references, Date.now() + 1000);
    const second = await resolver.resolve(references, Date.now() + 1000);
    expect(second.values.get("TLS_KEY")).toBe("key-2");
  });

  it("names the fields an issuance has when the one asked for is not among them", async () => {
    const resolver = createResolver(async () => new IssuingSource({}), { ignoreMissing: false, log: quiet });
    const references = planReferences({ SECRET_X: "issue:pki/issue/web?common_name=a.svc#cert" }, settings).references;
    const { problems } = await resolver.resolve(references, Date.now() + 1000);
    expect(problems).toEqual([
      {
        name: "SECRET_X",
        raw: "issue:pki/issue/web?common_name=a.svc#cert",
        kind: "missing",
        reason: 'field "cert" not found in vault write pki/issue/web common_name=a.svc (fields: certificate, private_key, ca_chain)',
      },
    ]);
  });

  it("reports a backend that cannot issue", async () => {
    const resolver = createResolver(async () => new MemorySource({}), { ignoreMissing: false, log: quiet });
    const references = planReferences({ SECRET_X: "issue:database/creds/app#password" }, settings).references;
    const { problems } = await resolver.resolve(references, Date.now() + 1000);
    expect(problems.map((problem) => [problem.kind, problem.reason])).toEqual([["config", "the vault backend cannot issue secrets"]]);
  });
});
