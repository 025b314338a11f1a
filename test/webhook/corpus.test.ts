// The realistic-pod corpus: every pod in test/fixtures/pods (what Helm charts, controllers and other
// webhooks really send) goes through the real webhook program over HTTPS, with the image configs of
// test/fixtures/images.yaml served by the real plain OCI registry of the test infrastructure as the
// mirror of docker.io, ghcr.io, quay.io and gcr.io.
//
// What each pod must run is computed here, independently of webhook/mutate.ts, from Kubernetes'
// rules: argv = (command, else image ENTRYPOINT) ++ (args, else image CMD when command is unset),
// where the kubelet expands `$(VAR)` and unescapes `$$` in the pod's command/args but never in the
// image's ENTRYPOINT/CMD. A mutated container must run the shim followed by exactly that argv.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { service, skipWithout } from "../infra/coords.ts";
import { type Descriptor, type ImageFormat, MEDIA, type PushTarget, pushBlob, pushManifest, sha256 } from "../infra/oci-push.ts";
import type { RegistryEndpoint } from "../infra/registry-http.ts";
import { applyResponse, type HttpAnswer, podCreateReview, type RunningWebhook, startWebhook } from "./harness.ts";

// ---- what the corpus is made of ------------------------------------------------------------------

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: VolumeMount[];
  [field: string]: unknown;
}

interface Volume {
  name: string;
  [field: string]: unknown;
}

interface Pod {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; generateName?: string; namespace?: string; annotations?: Record<string, string>; [field: string]: unknown };
  spec: {
    containers: Container[];
    initContainers?: Container[];
    volumes?: Volume[];
    nodeSelector?: Record<string, string>;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
}

interface ImageSpec extends ImageConfig {
  image: string;
  format?: ImageFormat;
  platforms?: (ImageConfig & { platform: string })[];
  attestations?: boolean;
  published?: boolean;
}

interface Fixture {
  file: string;
  pod: Pod;
}

const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");
const podsDir = join(fixturesDir, "pods");

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const SHIM_TOKEN_DIR = "/var/run/secrets/kustodia.io/serviceaccount";

/**
 * What the apiserver's ServiceAccount admission plugin does before any webhook sees a pod: unless
 * automounting is off, a projected `kube-api-access-*` volume mounted into every container and init
 * container at the token directory. Fixtures that already show it are left as they are.
 */
function asAfterServiceAccountPlugin(pod: Pod): Pod {
  if (pod.spec.automountServiceAccountToken === false) return pod;
  const mounted = (container: Container) => (container.volumeMounts ?? []).some((mount) => mount.mountPath === SERVICE_ACCOUNT_DIR);
  const containers = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])];
  if (containers.every(mounted)) return pod;
  const copy = structuredClone(pod);
  const existing = copy.spec.volumes?.find((volume) => volume.name.startsWith("kube-api-access-"));
  const name = existing?.name ?? "kube-api-access-k7xq2";
  if (!existing) {
    copy.spec.volumes = [
      ...(copy.spec.volumes ?? []),
      {
        name,
        projected: {
          defaultMode: 420,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
            { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
            { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
          ],
        },
      },
    ];
  }
  for (const container of [...copy.spec.containers, ...(copy.spec.initContainers ?? [])]) {
    if (!mounted(container))
      container.volumeMounts = [...(container.volumeMounts ?? []), { name, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }];
  }
  return copy;
}

const fixtures: Fixture[] = readdirSync(podsDir)
  .filter((file) => file.endsWith(".yaml"))
  .sort()
  .map((file) => ({ file, pod: asAfterServiceAccountPlugin(parseYaml(readFileSync(join(podsDir, file), "utf8")) as Pod) }));
const imageSpecs = (parseYaml(readFileSync(join(fixturesDir, "images.yaml"), "utf8")) as { images: ImageSpec[] }).images;
const fixture = (file: string): Fixture => {
  const found = fixtures.find((one) => one.file === file);
  if (!found) throw new Error(`no fixture ${file}`);
  return found;
};

const SHIM = "/kustodia/kustodia-shim";
const SHIM_IMAGE = "registry.example/kustodia/shim:test";
const VAULT_ADDR = "https://vault.example:8200";
const INJECT = "kustodia.io/inject";
const PREFIX = "SECRET_";

// ---- image names, as container runtimes read them (distribution's ParseNormalizedNamed) ------------

interface ImageRef {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

function parseImageRef(image: string): ImageRef {
  const [nameAndTag = "", digest] = image.split("@");
  const colon = nameAndTag.lastIndexOf(":");
  const hasTag = colon > nameAndTag.lastIndexOf("/");
  const name = hasTag ? nameAndTag.slice(0, colon) : nameAndTag;
  const tag = hasTag ? nameAndTag.slice(colon + 1) : digest ? undefined : "latest";
  const slash = name.indexOf("/");
  const first = name.slice(0, slash);
  const isHost = slash > 0 && (first.includes(".") || first.includes(":") || first === "localhost");
  const registry = isHost ? first : "docker.io";
  let repository = isHost ? name.slice(slash + 1) : name;
  if (registry === "docker.io" && !repository.includes("/")) repository = `library/${repository}`;
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

// ---- pushing the corpus images through the Distribution API ---------------------------------------

/** An empty tar (1024 zero bytes), gzipped with a fixed header: the same bytes every run, so digests are stable. */
const LAYER = Buffer.from("H4sIAAAAAAACA2NgGAWjYBSMVAAALq+17wAEAAA=", "base64");

function platformOf(text: string): NonNullable<Descriptor["platform"]> {
  const [os = "", architecture = "", variant] = text.split("/");
  return { architecture, os, ...(variant ? { variant } : {}) };
}

function pickConfig(source: ImageConfig): ImageConfig {
  return {
    ...(source.entrypoint !== undefined ? { entrypoint: source.entrypoint } : {}),
    ...(source.cmd !== undefined ? { cmd: source.cmd } : {}),
  };
}

/** A config blob as `docker build` writes it (Docker configs spell an unset ENTRYPOINT/CMD as null, OCI ones omit it). */
function configBlob(config: ImageConfig, platform: string, format: ImageFormat): Buffer {
  const unset = format === "docker" ? null : undefined;
  return Buffer.from(
    JSON.stringify({
      ...platformOf(platform),
      created: "2024-11-20T09:30:00Z",
      config: {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Entrypoint: config.entrypoint ?? unset,
        Cmd: config.cmd ?? unset,
        WorkingDir: "/",
      },
      rootfs: { type: "layers", diff_ids: [sha256(gunzipSync(LAYER))] },
      history: [{ created: "2024-11-20T09:30:00Z", created_by: "kustodia corpus fixture" }],
    }),
  );
}

async function pushPlatformImage(target: PushTarget, tag: string | undefined, config: ImageConfig, platform: string, format: ImageFormat) {
  const media = MEDIA[format];
  const configDescriptor = await pushBlob(target, configBlob(config, platform, format), media.config);
  const layer = await pushBlob(target, LAYER, media.layer);
  return await pushManifest(target, tag, {
    schemaVersion: 2,
    mediaType: media.manifest,
    config: configDescriptor,
    layers: [layer],
  });
}

/** buildx's provenance attestation of one platform manifest, listed in the index as unknown/unknown. */
async function pushAttestation(target: PushTarget, subject: Descriptor): Promise<Descriptor> {
  const predicateType = "https://slsa.dev/provenance/v0.2";
  const statement = {
    _type: "https://in-toto.io/Statement/v0.1",
    predicateType,
    subject: [{ name: target.repository, digest: { sha256: subject.digest.slice(7) } }],
  };
  const layer = await pushBlob(target, Buffer.from(JSON.stringify(statement)), "application/vnd.in-toto+json");
  const configJson = { architecture: "unknown", os: "unknown", config: {}, rootfs: { type: "layers", diff_ids: [layer.digest] } };
  const config = await pushBlob(target, Buffer.from(JSON.stringify(configJson)), MEDIA.oci.config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.oci.manifest,
    config,
    layers: [{ ...layer, annotations: { "in-toto.io/predicate-type": predicateType } }],
  };
  return {
    ...(await pushManifest(target, undefined, manifest)),
    platform: { architecture: "unknown", os: "unknown" },
    annotations: { "vnd.docker.reference.digest": subject.digest, "vnd.docker.reference.type": "attestation-manifest" },
  };
}

/** Pushes one images.yaml entry under its repository path; returns the digest its tag points at. */
async function pushImage(endpoint: RegistryEndpoint, spec: ImageSpec): Promise<string> {
  const { repository, tag = "latest" } = parseImageRef(spec.image);
  const target = { endpoint, repository };
  const format = spec.format ?? "oci";
  if (!spec.platforms) return (await pushPlatformImage(target, tag, spec, "linux/amd64", format)).digest;
  const manifests: Descriptor[] = [];
  const attestations: Descriptor[] = [];
  for (const entry of spec.platforms) {
    const pushed = await pushPlatformImage(target, undefined, { ...pickConfig(spec), ...pickConfig(entry) }, entry.platform, format);
    manifests.push({ ...pushed, platform: platformOf(entry.platform) });
    if (spec.attestations) attestations.push(await pushAttestation(target, pushed));
  }
  return (
    await pushManifest(target, tag, {
      schemaVersion: 2,
      mediaType: MEDIA[format].index,
      manifests: [...manifests, ...attestations],
    })
  ).digest;
}

// ---- what Kubernetes runs -----------------------------------------------------------------------

/**
 * The kubelet's expansion of command/args (k8s.io/kubernetes third_party/forked/golang/expansion):
 * `$(VAR)` is replaced, `$$` is one `$`, any other `$` stays. Every variable is kept symbolic as
 * ⟦VAR⟧: the env (envFrom, service links) is not known here, but the same word expands the same way.
 */
function expand(word: string): string {
  let out = "";
  for (let i = 0; i < word.length; i++) {
    const next = word[i + 1];
    if (word[i] !== "$" || next === undefined) {
      out += word[i];
      continue;
    }
    const close = next === "(" ? word.indexOf(")", i + 2) : -1;
    if (next === "$") out += "$";
    else if (close >= 0) {
      out += `⟦${word.slice(i + 2, close)}⟧`;
      i = close - 1;
    } else out += `$${next}`;
    i += 1;
  }
  return out;
}

const nonEmpty = (list: string[] | undefined): string[] | undefined => (list && list.length > 0 ? list : undefined);

/** argv of a container: command (else image ENTRYPOINT) ++ args (else image CMD, only when command is unset too). */
function whatKubernetesRuns(container: Container, image: () => ImageConfig): string[] {
  const command = nonEmpty(container.command);
  const args = nonEmpty(container.args);
  if (command) return [...command, ...(args ?? [])].map(expand);
  const config = image();
  return [...(config.entrypoint ?? []), ...(args ? args.map(expand) : (config.cmd ?? []))];
}

const catalog = imageSpecs.map((spec) => ({ spec, ref: parseImageRef(spec.image) }));
/** images.yaml entry → the digest its tag points at, once pushed. */
const pushedDigests = new Map<string, string>();

function catalogEntry(image: string) {
  const ref = parseImageRef(image);
  const sameRepository = catalog.filter((entry) => entry.ref.registry === ref.registry && entry.ref.repository === ref.repository);
  return ref.digest
    ? sameRepository.find((entry) => pushedDigests.get(entry.spec.image) === ref.digest)
    : sameRepository.find((entry) => entry.ref.tag === ref.tag);
}

/** The ENTRYPOINT/CMD the container runtime would use for `image` on a node of `architecture`. */
function imageConfig(image: string | undefined, architecture: string): ImageConfig {
  const entry = image ? catalogEntry(image) : undefined;
  if (!entry) throw new Error(`test/fixtures/images.yaml has no entry for ${image}: add its ENTRYPOINT/CMD there`);
  if (!entry.spec.platforms) return pickConfig(entry.spec);
  const platform = entry.spec.platforms.find((one) => platformOf(one.platform).architecture === architecture);
  if (!platform) throw new Error(`${image} has no linux/${architecture} image in images.yaml`);
  return { ...pickConfig(entry.spec), ...pickConfig(platform) };
}

function allContainers(pod: Pod): Container[] {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
}

const splitList = (value: string | undefined): string[] =>
  (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

/** DESIGN.md §2: the containers named in kustodia.io/containers, else those with a SECRET_ var that is not passthrough. */
function expectedSelection(pod: Pod): Set<string> {
  const annotations = pod.metadata.annotations ?? {};
  const named = annotations["kustodia.io/containers"];
  if (named !== undefined) return new Set(splitList(named));
  const passthrough = new Set(splitList(annotations["kustodia.io/passthrough"]));
  const declares = (container: Container) =>
    (container.env ?? []).some((env) => env.name.startsWith(PREFIX) && env.name.length > PREFIX.length && !passthrough.has(env.name));
  return new Set(
    allContainers(pod)
      .filter(declares)
      .map((container) => container.name),
  );
}

/** DESIGN.md §2/§5: the shim settings a selected container receives (cluster defaults, then the pod's annotations). */
function expectedShimEnv(pod: Pod): Record<string, string> {
  const fromAnnotations: Record<string, string> = {
    "kustodia.io/backend": "KUSTODIA_BACKEND",
    "kustodia.io/vault-role": "KUSTODIA_VAULT_ROLE",
    "kustodia.io/vault-auth-path": "KUSTODIA_VAULT_AUTH_PATH",
    "kustodia.io/vault-kv-mount": "KUSTODIA_VAULT_KV_MOUNT",
    "kustodia.io/vault-namespace": "KUSTODIA_VAULT_NAMESPACE",
    "kustodia.io/passthrough": "KUSTODIA_PASSTHROUGH",
    "kustodia.io/ignore-missing": "KUSTODIA_IGNORE_MISSING",
    "kustodia.io/rotation": "KUSTODIA_ROTATION",
    "kustodia.io/rotation-interval": "KUSTODIA_ROTATION_INTERVAL",
    "kustodia.io/rotation-signal": "KUSTODIA_ROTATION_SIGNAL",
  };
  const env: Record<string, string> = { KUSTODIA_BACKEND: "vault", KUSTODIA_VAULT_ADDR: VAULT_ADDR };
  for (const [annotation, value] of Object.entries(pod.metadata.annotations ?? {})) {
    const name = fromAnnotations[annotation];
    if (name) env[name] = value;
  }
  return env;
}

interface NodeSelectorTerm {
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/**
 * The CPU architecture every node the pod may run on has: its nodeSelector, else a required node
 * affinity whose every term allows exactly the same single `kubernetes.io/arch`; amd64 when unpinned
 * (the webhook's configured default platform).
 */
function nodeArchitecture(pod: Pod): string {
  const selected = pod.spec.nodeSelector?.["kubernetes.io/arch"];
  if (selected) return selected;
  const affinity = pod.spec.affinity as
    | { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: NodeSelectorTerm[] } } }
    | undefined;
  const terms = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const allowed = terms.map((term) => {
    const arch = (term.matchExpressions ?? []).filter(
      (expression) => expression.key === "kubernetes.io/arch" && expression.operator === "In",
    );
    return arch.length === 1 && arch[0]?.values?.length === 1 ? arch[0].values[0] : undefined;
  });
  const [first] = allowed;
  return first !== undefined && allowed.every((arch) => arch === first) ? first : "amd64";
}

function without<T extends object>(object: T, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

/** The shim logs in to Vault (kubernetes auth by default) with a ServiceAccount token; without an automounted one the webhook mounts its own. */
function needsShimToken(pod: Pod, container: Container): boolean {
  const env = expectedShimEnv(pod);
  if ((env.KUSTODIA_BACKEND ?? "vault") !== "vault") return false;
  if (!["kubernetes", "jwt"].includes(env.KUSTODIA_VAULT_AUTH_METHOD ?? "kubernetes")) return false;
  const mounted = (container.volumeMounts ?? []).some((mount) => mount.mountPath === SERVICE_ACCOUNT_DIR);
  return !mounted && !(container.env ?? []).some((item) => item.name === "KUSTODIA_SA_TOKEN_FILE");
}

function tokenlessSelected(pod: Pod): Container[] {
  const selected = expectedSelection(pod);
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].filter((c) => selected.has(c.name) && needsShimToken(pod, c));
}

function expectShimmed(original: Container, mutated: Container, pod: Pod, volume: string, tokenVolume: string | undefined): void {
  const where = `container ${original.name}`;
  expect(without(mutated, "command", "args", "env", "volumeMounts"), where).toStrictEqual(
    without(original, "command", "args", "env", "volumeMounts"),
  );
  const architecture = nodeArchitecture(pod);
  const before = whatKubernetesRuns(original, () => imageConfig(original.image, architecture));
  const after = whatKubernetesRuns(mutated, () => {
    throw new Error(`${where}: the webhook left command unset, so Kubernetes would still read the image`);
  });
  // In rotation mode the shim stays resident, behind tini as PID 1.
  const rotation = pod.metadata.annotations?.["kustodia.io/rotation"];
  const prefix = rotation === "restart" || rotation === "signal" ? ["/kustodia/tini", "--", SHIM, "--"] : [SHIM, "--"];
  expect(after, `${where}: what Kubernetes runs after the mutation`).toStrictEqual([...prefix, ...before]);

  const env = original.env ?? [];
  expect(mutated.env?.slice(0, env.length), `${where}: its own env, unchanged and first`).toStrictEqual(env);
  const added = Object.fromEntries((mutated.env ?? []).slice(env.length).map((item) => [item.name, item.value]));
  const token = needsShimToken(pod, original);
  expect(added, `${where}: the shim's settings`).toStrictEqual({
    ...expectedShimEnv(pod),
    ...(token ? { KUSTODIA_SA_TOKEN_FILE: `${SHIM_TOKEN_DIR}/token` } : {}),
  });
  expect(mutated.volumeMounts, `${where}: mounts`).toStrictEqual([
    ...(original.volumeMounts ?? []),
    { name: volume, mountPath: "/kustodia", readOnly: true },
    ...(token ? [{ name: tokenVolume, mountPath: SHIM_TOKEN_DIR, readOnly: true }] : []),
  ]);
}

/** Everything a mutation may and must do to `original`, checked against `mutated`. */
function expectInjected(original: Pod, mutated: Pod): void {
  expect(without(mutated, "metadata", "spec")).toStrictEqual(without(original, "metadata", "spec"));
  expect(without(mutated.metadata, "annotations")).toStrictEqual(without(original.metadata, "annotations"));
  const { "kustodia.io/status": status, ...annotations } = mutated.metadata.annotations ?? {};
  expect(annotations).toStrictEqual(original.metadata.annotations);
  expect(status).toMatch(/^injected /);
  const listFields = ["containers", "initContainers", "volumes"];
  expect(without(mutated.spec, ...listFields), "the rest of the spec, unknown fields included").toStrictEqual(
    without(original.spec, ...listFields),
  );

  const volumes = original.spec.volumes ?? [];
  expect(mutated.spec.volumes?.slice(0, volumes.length), "the pod's own volumes").toStrictEqual(volumes);
  const added = mutated.spec.volumes?.slice(volumes.length) ?? [];
  const tokenNeeded = tokenlessSelected(original).length > 0;
  expect(added, "the shim volume added, and a token volume when a selected container has no ServiceAccount token").toHaveLength(
    tokenNeeded ? 2 : 1,
  );
  const volume = added[0] as Volume;
  const tokenVolume = tokenNeeded ? (added[1] as Volume) : undefined;
  if (tokenVolume) {
    expect(tokenVolume.name).toMatch(/^kustodia-token(-[0-9]+)?$/);
    expect(tokenVolume.projected).toEqual({
      defaultMode: 0o444,
      sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }],
    });
  }
  expect(volume.name).toMatch(/^kustodia(-[0-9]+)?$/);
  expect(volumes.map(({ name }) => name)).not.toContain(volume.name);
  expect(volume.emptyDir).toBeDefined();

  const [install, ...initContainers] = mutated.spec.initContainers ?? [];
  expect(install?.name, "the first init container").toBe("kustodia-install");
  expect(install?.image).toBe(SHIM_IMAGE);
  expect(install?.volumeMounts).toEqual([expect.objectContaining({ name: volume.name })]);
  expect(install?.volumeMounts?.[0]?.readOnly).not.toBe(true);
  expect(install?.securityContext).toMatchObject({
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  });

  const selected = expectedSelection(original);
  const pairs: [Container, Container | undefined][] = [
    ...(original.spec.initContainers ?? []).map((container, index): [Container, Container | undefined] => [
      container,
      initContainers[index],
    ]),
    ...original.spec.containers.map((container, index): [Container, Container | undefined] => [container, mutated.spec.containers[index]]),
  ];
  expect(
    initContainers.map(({ name }) => name),
    "the pod's init containers, in order",
  ).toStrictEqual((original.spec.initContainers ?? []).map(({ name }) => name));
  expect(mutated.spec.containers.map(({ name }) => name)).toStrictEqual(original.spec.containers.map(({ name }) => name));
  for (const [before, after] of pairs) {
    if (!after) continue;
    if (selected.has(before.name)) expectShimmed(before, after, original, volume.name, tokenVolume?.name);
    // Deep equality, not key order: the JSON Patch shifts init containers by one, and the apiserver
    // re-serializes the stored object in its own field order anyway.
    else expect(after, `unselected container ${before.name}, unchanged`).toStrictEqual(before);
  }

  const names = allContainers(mutated).map(({ name }) => name);
  expect(new Set(names).size, "container names are unique").toBe(names.length);
  const volumeNames = new Set(mutated.spec.volumes?.map(({ name }) => name));
  const dangling = allContainers(mutated).flatMap((container) =>
    (container.volumeMounts ?? []).filter((mount) => !volumeNames.has(mount.name)),
  );
  expect(dangling, "every mount names a volume of the pod").toStrictEqual([]);
}

/** What the webhook may log of any pod: namespaces, pod names, container names, images. */
const identities = fixtures.flatMap(({ pod }) =>
  [pod.metadata.namespace, pod.metadata.name, pod.metadata.generateName, ...allContainers(pod).flatMap((c) => [c.name, c.image])].filter(
    (item): item is string => typeof item === "string",
  ),
);

/** Env values a log line must never hold: every literal value of 8+ characters that is not part of some pod's identity. */
function envValuesOf(pod: Pod): string[] {
  const values = allContainers(pod).flatMap((container) =>
    (container.env ?? []).map((env) => env.value).filter((value): value is string => typeof value === "string"),
  );
  return [...new Set(values)].filter((value) => value.length >= 8 && !identities.some((name) => name.includes(value)));
}

// ---- the corpus itself ----------------------------------------------------------------------------

const table = fixtures.map((one) => [one.file, one] as const);
const namespaceOf = (pod: Pod): string => pod.metadata.namespace ?? "default";

describe("the realistic-pod corpus", () => {
  it("holds at least 30 pods", () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
  });

  it.each(table)("%s: a commented v1 Pod that opts in and declares a SECRET_ reference", (file, { pod }) => {
    expect(readFileSync(join(podsDir, file), "utf8")).toMatch(/^# \S/);
    expect(pod.apiVersion).toBe("v1");
    expect(pod.kind).toBe("Pod");
    expect(pod.metadata.annotations?.[INJECT]).toBe("true");
    expect(
      allContainers(pod).some((container) => (container.env ?? []).some((env) => env.name.startsWith(PREFIX) && env.name !== PREFIX)),
    ).toBe(true);
    const names = allContainers(pod).map(({ name }) => name);
    expect(new Set(names).size).toBe(names.length);
  });

  it("images.yaml keeps the repositories of different source registries apart (one registry mirrors them all)", () => {
    const seen = new Map<string, string>();
    for (const { spec, ref } of catalog) {
      const key = `${ref.repository}:${ref.tag}`;
      expect(seen.get(key), `${spec.image} and ${seen.get(key)} would share ${key}`).toBeUndefined();
      seen.set(key, spec.image);
    }
  });

  it.each([
    ["$(POD_NAMESPACE).svc.cluster.local", "⟦POD_NAMESPACE⟧.svc.cluster.local"],
    ["$$(ESCAPED) and $$HOME", "$(ESCAPED) and $HOME"],
    ["worker-$$.pid", "worker-$.pid"],
    ["$HOME, $1 and a trailing $", "$HOME, $1 and a trailing $"],
    ["$(unterminated", "$(unterminated"],
  ])("the test's model of the kubelet's expansion turns %j into %j", (word, expanded) => {
    expect(expand(word)).toBe(expanded);
  });
});

interface Admission {
  uid: string;
  answer: HttpAnswer;
  ms: number;
}

const MIRRORED = ["docker.io", "ghcr.io", "quay.io", "gcr.io"];

describe.skipIf(skipWithout("registry"))("the webhook program on the realistic-pod corpus", () => {
  let webhook: RunningWebhook | undefined;
  let plainHost = "";
  const running = (): RunningWebhook => {
    if (!webhook) throw new Error("the webhook did not start");
    return webhook;
  };
  const firstPass = new Map<string, Admission>();
  const coldMs: number[] = [];
  const warmMs: number[] = [];
  const warmUids: string[] = [];

  async function admit(pod: object, namespace: string, extra: Record<string, unknown> = {}): Promise<Admission> {
    const review = podCreateReview(pod, namespace, extra);
    const started = performance.now();
    const answer = await running().post("/mutate", review.body);
    return { uid: review.uid, answer, ms: performance.now() - started };
  }

  async function firstAdmission(file: string, pod: Pod): Promise<Admission> {
    const known = firstPass.get(file);
    if (known) return known;
    const admission = await admit(pod, namespaceOf(pod));
    firstPass.set(file, admission);
    return admission;
  }

  const decodePatch = (patch: unknown): unknown =>
    typeof patch === "string" ? JSON.parse(Buffer.from(patch, "base64").toString("utf8")) : patch;

  beforeAll(async () => {
    const registry = service("registry");
    plainHost = registry.plain.host;
    const published = imageSpecs.filter((spec) => spec.published !== false);
    const digests = await Promise.all(published.map((spec) => pushImage(registry.plain, spec)));
    for (const [index, spec] of published.entries()) pushedDigests.set(spec.image, digests[index] as string);
    const pushedFor = (image: string) => {
      const { registry: host, repository } = parseImageRef(image);
      return catalog
        .filter(({ ref }) => ref.registry === host && ref.repository === repository)
        .map(({ spec }) => pushedDigests.get(spec.image));
    };
    const unpinned = fixtures.flatMap(({ file, pod }) =>
      allContainers(pod)
        .map(({ image }) => image ?? "")
        .filter((image) => image.includes("@") && !catalogEntry(image))
        .map((image) => `${file}: ${image} (images.yaml pushes ${pushedFor(image).join(", ")})`),
    );
    if (unpinned.length > 0) throw new Error(`fixtures pin digests that images.yaml does not build:\n${[...new Set(unpinned)].join("\n")}`);
    webhook = await startWebhook({
      env: {
        KUSTODIA_REGISTRY_PLAIN_HTTP: plainHost,
        KUSTODIA_REGISTRY_ALLOWED_NETWORKS: "127.0.0.0/8",
        KUSTODIA_REGISTRY_MIRRORS: MIRRORED.map((registryName) => `${registryName}=${plainHost}`).join(","),
        KUSTODIA_SHIM_VAULT_ADDR: VAULT_ADDR,
        KUSTODIA_SHIM_BACKEND: "vault",
      },
    });
  });

  afterAll(async () => {
    const serverMs = (uids: string[]) =>
      (webhook?.logs() ?? []).flatMap((line) => {
        const entry = parseLogLine(line);
        return entry?.uid !== undefined && uids.includes(entry.uid) && typeof entry.duration_ms === "number" ? [entry.duration_ms] : [];
      });
    const coldUids = [...firstPass.values()].map(({ uid }) => uid);
    console.log(
      [
        `corpus admission latency over ${fixtures.length} pods (client round trip over HTTPS | server duration_ms):`,
        `  first pass, cold registry cache: ${percentiles(coldMs)} | ${percentiles(serverMs(coldUids))}`,
        `  second pass, warm registry cache: ${percentiles(warmMs)} | ${percentiles(serverMs(warmUids))}`,
      ].join("\n"),
    );
    await webhook?.stop();
  });

  it.each(table)(
    "%s: admitted with a JSON Patch after which each selected container runs the shim before exactly what Kubernetes would have run, and nothing else changes",
    async (file, { pod }) => {
      const admission = await firstAdmission(file, pod);
      coldMs.push(admission.ms);
      const { answer, uid } = admission;
      expect(answer.status, answer.text).toBe(200);
      expect(answer.json).toMatchObject({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" });
      const response = answer.json.response;
      expect(response.uid).toBe(uid);
      expect(response.allowed, JSON.stringify(response.status)).toBe(true);
      const tokenless = tokenlessSelected(pod).map((container) => `container "${container.name}" has no ServiceAccount token`);
      expect(response.warnings ?? [], "warnings: only for containers that get a projected token").toEqual(
        tokenless.map((start) => expect.stringContaining(start)),
      );
      expect(response.patchType).toBe("JSONPatch");
      expectInjected(pod, applyResponse(pod, response));
    },
  );

  it.each(table)("%s: the mutated pod, admitted again (webhook reinvocation), is allowed without a patch", async (file, { pod }) => {
    const mutated = applyResponse(pod, (await firstAdmission(file, pod)).answer.json.response);
    const { answer, uid } = await admit(mutated, namespaceOf(pod));
    expect(answer.status).toBe(200);
    expect(answer.json.response.uid).toBe(uid);
    expect(answer.json.response.allowed).toBe(true);
    expect(answer.json.response.patch).toBeUndefined();
    expect(answer.json.response.patchType).toBeUndefined();
  });

  it.each(table)("%s: a dry-run admission gets the identical patch", async (file, { pod }) => {
    const first = await firstAdmission(file, pod);
    expect(first.answer.json?.response?.patch).toEqual(expect.any(String));
    const { answer, uid } = await admit(pod, namespaceOf(pod), { dryRun: true });
    expect(answer.status).toBe(200);
    expect(answer.json.response.uid).toBe(uid);
    expect(answer.json.response.allowed).toBe(true);
    expect(decodePatch(answer.json.response.patch)).toStrictEqual(decodePatch(first.answer.json.response.patch));
  });

  it.each(table)("%s: a second admission with a warm registry cache gets the identical patch", async (file, { pod }) => {
    const first = await firstAdmission(file, pod);
    expect(first.answer.json?.response?.patch).toEqual(expect.any(String));
    const again = await admit(pod, namespaceOf(pod));
    warmMs.push(again.ms);
    warmUids.push(again.uid);
    expect(again.answer.status).toBe(200);
    expect(decodePatch(again.answer.json.response.patch)).toStrictEqual(decodePatch(first.answer.json.response.patch));
  });

  type Outcome = { allowed: true } | { allowed: false; mentions: (pod: Pod) => string[] };
  const edit = (file: string, change: (pod: Pod) => void) => (): Pod => {
    const pod = structuredClone(fixture(file).pod);
    change(pod);
    return pod;
  };
  const setImage = (container: string, image: () => string) => (pod: Pod) => {
    const found = pod.spec.containers.find(({ name }) => name === container);
    if (found) found.image = image();
  };
  const denialOf = (container: string) => (pod: Pod) => [
    "command:",
    `kustodia.io/entrypoint.${container}`,
    pod.spec.containers.find(({ name }) => name === container)?.image ?? "",
  ];
  const notInRegistry = "10-distroless-go-ko-digest.yaml";
  const negativeCases: [string, () => Pod, Outcome][] = [
    [
      "a pod without the kustodia.io/inject annotation is allowed without a patch",
      edit("01-nginx-official-envsubst.yaml", (pod) => delete pod.metadata.annotations?.[INJECT]),
      { allowed: true },
    ],
    [
      'a pod with kustodia.io/inject: "false" is allowed without a patch',
      edit("03-postgres-official-args-only.yaml", (pod) => Object.assign(pod.metadata.annotations ?? {}, { [INJECT]: "false" })),
      { allowed: true },
    ],
    [
      "a Windows pod (spec.os.name: windows) is allowed without a patch",
      edit("16-init-migration.yaml", (pod) => Object.assign(pod.spec, { os: { name: "windows" } })),
      { allowed: true },
    ],
    [
      "a pod the webhook already handled (kustodia.io/status) is allowed without a patch",
      edit("11-java-jib-tool-options.yaml", (pod) =>
        Object.assign(pod.metadata.annotations ?? {}, { "kustodia.io/status": "injected 0.0.9" }),
      ),
      { allowed: true },
    ],
    [
      "a pod whose image no registry or mirror has, without command, is denied with a message naming command: and kustodia.io/entrypoint.<container>",
      edit(
        notInRegistry,
        setImage("orders-api", () => "ghcr.io/acme/never-published:1.0.0"),
      ),
      { allowed: false, mentions: denialOf("orders-api") },
    ],
    [
      "a pod whose image is missing from a plain-HTTP registry (404), without command, is denied with a message naming command: and kustodia.io/entrypoint.<container>",
      edit(
        notInRegistry,
        setImage("orders-api", () => `${plainHost}/acme/never-published:1.0.0`),
      ),
      { allowed: false, mentions: denialOf("orders-api") },
    ],
    [
      "a pod whose selected container already mounts a volume at /kustodia is denied",
      edit("13-node-args-only.yaml", (pod) => pod.spec.containers[0]?.volumeMounts?.push({ name: "app", mountPath: "/kustodia/data" })),
      { allowed: false, mentions: () => ["/kustodia", "web-frontend"] },
    ],
  ];

  it.each(negativeCases)("%s", async (_name, makePod, outcome) => {
    const pod = makePod();
    const { answer, uid } = await admit(pod, namespaceOf(pod));
    expect(answer.status).toBe(200);
    const response = answer.json.response;
    expect(response.uid).toBe(uid);
    expect(response.allowed).toBe(outcome.allowed);
    expect(response.patch).toBeUndefined();
    expect(response.patchType).toBeUndefined();
    if (!outcome.allowed) for (const text of outcome.mentions(pod)) expect(response.status?.message).toContain(text);
  });

  it.each(table)("%s: every admission of the pod was logged and no log line holds any of its env values", async (file, { pod }) => {
    const { uid } = await firstAdmission(file, pod);
    const lines = running().logs();
    expect(lines.some((line) => line.includes(`"uid":"${uid}"`) && line.includes('"decision":"mutated"'))).toBe(true);
    const leaked = envValuesOf(pod).filter((value) =>
      lines.some((line) => line.includes(value) || line.includes(JSON.stringify(value).slice(1, -1))),
    );
    expect(leaked).toStrictEqual([]);
  });
});

function percentiles(samples: number[]): string {
  if (samples.length === 0) return "no samples";
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number).toFixed(1);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms (n=${samples.length})`;
}

function parseLogLine(line: string): { uid?: string; duration_ms?: number } | undefined {
  try {
    return JSON.parse(line) as { uid?: string; duration_ms?: number };
  } catch {
    return undefined;
  }
}
