// The webhook's image ENTRYPOINT/CMD lookup over the OCI Distribution API: tag → digest (HEAD),
// index → platform manifest → config blob, each checked against its digest. Mirrors are tried
// before the registry itself; answers are cached (tags for a while, content by digest for good),
// each under the credentials of the endpoint that gave it; identical concurrent lookups share one;
// lookups take fair slots (slots.ts) and each has one deadline, counted from when its slot is
// granted. Errors come back as values; their network detail goes to the debug log only.
import { createHash } from "node:crypto";
import type { ImageConfig, ImageLookupResult, Platform } from "../image-facts.ts";
import type { Metrics } from "../metrics.ts";
import type { RegistrySettings } from "../settings.ts";
import { createAuthenticator } from "./auth.ts";
import { createLru, createTtlLru } from "./cache.ts";
import { credentialsFor, type RegistryCredential } from "./credentials.ts";
import { createDestinationPolicy } from "./destinations.ts";
import { createTransport } from "./http.ts";
import { formatImageName, type ImageName, manifestReference, parseImageName } from "./image-name.ts";
import { ContentError, MANIFEST_ACCEPT, type Manifest, readImageConfig, readManifest, sha256Digest, verifyDigest } from "./manifest.ts";
import { formatPlatform, normalizePlatform, selectPlatform } from "./platform.ts";
import { createSession, LookupError, type Session, type SessionContext, unreadable } from "./session.ts";
import { createSlots } from "./slots.ts";

export type { RegistryCredential } from "./credentials.ts";

export interface ImageConfigOptions {
  /** The pod's pinned architecture (nodeSelector `kubernetes.io/arch`); the configured default otherwise. */
  architecture?: string;
  /** The pod's pull-secret credentials; those matching the registry are tried in order. */
  credentials: readonly RegistryCredential[];
  /** Any value standing for the admission the lookup is for: lookups of one admission share its slots. */
  admission?: unknown;
}

/**
 * Where failures' network detail goes: the webhook's log at warn level, which the cluster admin
 * reads (a registry on a network not in registry.allowedNetworks is a setting to fix, seen first on a
 * real node); the pod's author sees only UNREADABLE.
 */
export interface RegistryLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

/** One place a lookup may be answered: a mirror or the registry, with the pod's credentials for it. */
interface Endpoint {
  host: string;
  candidates: RegistryCredential[];
  /** The cache scope of answers from here: the fingerprint of `candidates`. */
  scope: string;
}

export interface RegistryClient {
  imageConfig(image: string, options: ImageConfigOptions): Promise<ImageLookupResult>;
  /** Closes kept-alive connections. */
  close(): void;
}

/** Manifests and configs are a few KiB; a registry sending more is broken or hostile. */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

interface Resolved {
  digest: string;
  /** The manifest when resolving already fetched it. */
  manifest?: Manifest;
}

export function createRegistryClient(
  settings: RegistrySettings,
  metrics: Metrics,
  log: RegistryLog = { warn: () => undefined },
): RegistryClient {
  const transport = createTransport({
    destinations: createDestinationPolicy(settings.allowedNetworks),
    ...(settings.caFile ? { caFile: settings.caFile } : {}),
  });
  const authenticator = createAuthenticator({
    transport,
    cacheSize: settings.cacheSize,
    plainHttp: settings.plainHttp,
    tokenRealmHosts: settings.tokenRealmHosts,
    maxBytes: MAX_DOCUMENT_BYTES,
  });
  const slots = createSlots({
    total: settings.concurrency,
    perHost: settings.hostConcurrency,
    perAdmission: settings.admissionConcurrency,
  });
  const tags = createTtlLru<string>(settings.cacheSize, settings.cacheTtlMs);
  const configs = createLru<ImageConfig>(settings.cacheSize);
  const inFlight = new Map<string, Promise<ImageConfig>>();

  /** From the caches, under any of the pod's scopes: the config when both the tag (if any) and the content are known. */
  function cached(name: ImageName, platformKey: string, scopes: readonly string[]): { digest?: string; config?: ImageConfig } {
    const digest = name.digest ?? firstDefined(scopes, (scope) => tags.get(tagKey(name, scope)));
    if (digest === undefined) return {};
    if (!name.digest) metrics.registryCacheHits.inc({ cache: "tag" });
    const config = firstDefined(scopes, (scope) => configs.get(configKey(digest, platformKey, scope)));
    if (config) metrics.registryCacheHits.inc({ cache: "config" });
    return config ? { digest, config } : { digest };
  }

  /** The mirrors, then the registry; each with the credentials the pod holds for that host, and only those. */
  function endpoints(name: ImageName, credentials: readonly RegistryCredential[]): Endpoint[] {
    const hosts = [
      ...(settings.mirrors[name.registry] ?? []).map((mirror) => ({ host: mirror, registry: mirror })),
      { host: name.apiHost, registry: name.registry },
    ];
    return hosts.map(({ host, registry }) => {
      const candidates = credentialsFor({ registry, repository: name.repository }, credentials);
      return { host, candidates, scope: fingerprint(candidates) };
    });
  }

  async function lookup(
    name: ImageName,
    platform: Platform,
    credentials: readonly RegistryCredential[],
    admission: unknown,
  ): Promise<ImageConfig> {
    const platformKey = formatPlatform(platform);
    // An answer is cached under the credentials of the endpoint that gave it, and served only to
    // pods that would send that endpoint the same credentials: a pod without them must not learn a
    // private image's ENTRYPOINT from the cache, whether the answer came from a mirror or the registry.
    const places = endpoints(name, credentials);
    const known = cached(name, platformKey, [...new Set(places.map((place) => place.scope))]);
    if (known.config) return known.config;
    const release = await slot(admission, name.registry);
    try {
      const signal = AbortSignal.timeout(settings.timeoutMs);
      const context: SessionContext = {
        transport,
        authenticator,
        signal,
        timeoutMs: settings.timeoutMs,
        maxBytes: MAX_DOCUMENT_BYTES,
        plainHttp: settings.plainHttp,
      };
      const failures: string[] = [];
      for (const [index, place] of places.entries()) {
        const session = createSession(context, place.host, name.repository, place.candidates);
        try {
          return await lookupAt(session, name, known.digest, platform, platformKey, place.scope);
        } catch (error) {
          const last = index === places.length - 1;
          if (last || !(error instanceof LookupError) || signal.aborted) throw withMirrorFailures(error, failures);
          failures.push(error.detail);
        }
      }
      throw new Error("unreachable: the registry itself is always the last endpoint");
    } finally {
      release();
    }
  }

  /**
   * A lookup slot. The wait does not eat into the lookup's own deadline; it is bounded by half of
   * it, so that waiting and working stay within the apiserver's webhook timeout (twice the lookup's).
   */
  async function slot(admission: unknown, host: string): Promise<() => void> {
    const waitMs = Math.ceil(settings.timeoutMs / 2);
    try {
      return await slots.acquire(admission, host, AbortSignal.timeout(waitMs));
    } catch {
      throw new LookupError(
        `no free registry lookup slot within ${waitMs} ms: too many image lookups are running for this pod or for ${host}; retry later`,
      );
    }
  }

  async function lookupAt(
    session: Session,
    name: ImageName,
    knownDigest: string | undefined,
    platform: Platform,
    platformKey: string,
    scope: string,
  ): Promise<ImageConfig> {
    const resolved = knownDigest ? { digest: knownDigest } : await resolveTag(session, name);
    const key = configKey(resolved.digest, platformKey, scope);
    let config = knownDigest ? undefined : configs.get(key);
    if (config) metrics.registryCacheHits.inc({ cache: "config" });
    else {
      config = await fetchConfig(session, name, resolved, platform);
      configs.set(key, config);
    }
    if (!name.digest) tags.set(tagKey(name, scope), resolved.digest);
    return config;
  }

  return {
    async imageConfig(image, options) {
      const result = await imageConfigResult(image, options);
      metrics.registryLookups.inc({ result: result.ok ? "ok" : "error" });
      return result;
    },
    close: () => transport.close(),
  };

  async function imageConfigResult(image: string, options: ImageConfigOptions): Promise<ImageLookupResult> {
    const parsed = parseImageName(image);
    if (!parsed.ok) return { ok: false, error: parsed.error };
    const admission = options.admission ?? {};
    const platform = normalizePlatform(wantedPlatform(settings.defaultPlatform, options.architecture));
    const key = JSON.stringify([formatImageName(parsed.name), formatPlatform(platform), fingerprint(options.credentials)]);
    let pending = inFlight.get(key);
    if (!pending) {
      pending = lookup(parsed.name, platform, options.credentials, admission).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    try {
      return { ok: true, config: structuredClone(await pending) };
    } catch (error) {
      if (!(error instanceof LookupError)) return { ok: false, error: `unexpected error looking up ${image}: ${(error as Error).message}` };
      log.warn({ image, cause: error.detail }, "image lookup failed");
      return { ok: false, error: error.message };
    }
  }
}

/** Tag → digest with HEAD (cheap, and not counted by the Docker Hub's pull limit); GET when HEAD gives no digest. */
async function resolveTag(session: Session, name: ImageName): Promise<Resolved> {
  const what = `manifest ${name.repository}:${name.tag}`;
  const path = `/v2/${name.repository}/manifests/${manifestReference(name)}`;
  const head = await session.fetch(path, what, { method: "HEAD", accept: MANIFEST_ACCEPT, allow: [405] });
  const digest = head.headers["docker-content-digest"];
  if (head.status === 200 && typeof digest === "string" && /^sha(256|384|512):[a-f0-9]+$/.test(digest)) return { digest };
  const got = await session.fetch(path, what, { accept: MANIFEST_ACCEPT });
  const claimed = got.headers["docker-content-digest"];
  return checked(() => {
    if (typeof claimed === "string") verifyDigest(got.body, claimed, `${what} from ${session.host}`);
    return {
      digest: sha256Digest(got.body),
      manifest: readManifest(got.body, got.headers["content-type"], `${what} from ${session.host}`),
    };
  });
}

type ImageManifest = Extract<Manifest, { kind: "manifest" }>;
type ImageIndex = Extract<Manifest, { kind: "index" }>;

async function fetchConfig(session: Session, name: ImageName, resolved: Resolved, platform: Platform): Promise<ImageConfig> {
  const top = resolved.manifest ?? (await fetchManifest(session, name.repository, resolved.digest));
  const manifest = top.kind === "index" ? await platformManifest(session, name, top, platform) : top;
  const what = `the config blob ${manifest.config.digest} of ${name.repository}`;
  const blob = await session.fetch(`/v2/${name.repository}/blobs/${manifest.config.digest}`, what, { followRedirects: true });
  return checked(() => {
    verifyDigest(blob.body, manifest.config.digest, `${what} from ${session.host}`);
    return readImageConfig(blob.body, `${what} from ${session.host}`);
  });
}

async function platformManifest(session: Session, name: ImageName, index: ImageIndex, platform: Platform): Promise<ImageManifest> {
  const chosen = selectPlatform(index.manifests, platform);
  if (!chosen) throw new LookupError(noPlatform(platform, index, formatImageName(name)));
  const manifest = await fetchManifest(session, name.repository, chosen.digest);
  if (manifest.kind === "index")
    throw new LookupError(`the ${formatPlatform(platform)} entry of the index of ${formatImageName(name)} is itself an index`);
  return manifest;
}

async function fetchManifest(session: Session, repository: string, digest: string): Promise<Manifest> {
  const what = `manifest ${repository}@${digest}`;
  const got = await session.fetch(`/v2/${repository}/manifests/${digest}`, what, { accept: MANIFEST_ACCEPT });
  return checked(() => {
    verifyDigest(got.body, digest, `${what} from ${session.host}`);
    return readManifest(got.body, got.headers["content-type"], `${what} from ${session.host}`);
  });
}

/** Content errors are lookup errors (the next endpoint may serve good content), told in the debug log only. */
function checked<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw error instanceof ContentError ? unreadable(error.message) : error;
  }
}

function noPlatform(platform: Platform, index: ImageIndex, where: string): string {
  const available = [
    ...new Set(
      index.manifests.flatMap((entry) => (entry.platform && entry.platform.os !== "unknown" ? [formatPlatform(entry.platform)] : [])),
    ),
  ];
  return `no ${formatPlatform(platform)} image in the index of ${where} (available: ${available.join(", ") || "none"})`;
}

function withMirrorFailures(error: unknown, failures: readonly string[]): unknown {
  if (!(error instanceof LookupError) || failures.length === 0) return error;
  return new LookupError(error.message, `${error.detail} (mirrors tried first: ${failures.join("; ")})`);
}

function firstDefined<T>(scopes: readonly string[], read: (scope: string) => T | undefined): T | undefined {
  for (const scope of scopes) {
    const found = read(scope);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The pod's architecture, or the configured default platform (its variant only goes with its own architecture). */
function wantedPlatform(defaults: RegistrySettings["defaultPlatform"], architecture: string | undefined): Platform {
  if (architecture === undefined || architecture === defaults.architecture) return { ...defaults };
  return { os: defaults.os, architecture };
}

function tagKey(name: ImageName, scope: string): string {
  return `${scope} ${name.registry}/${name.repository}:${name.tag}`;
}

function configKey(digest: string, platformKey: string, scope: string): string {
  return `${scope} ${digest} ${platformKey}`;
}

/** Lookups with different credentials never share a result in flight: one pod's rejection must not become another's. */
function fingerprint(credentials: readonly RegistryCredential[]): string {
  return credentials.length === 0 ? "" : createHash("sha256").update(JSON.stringify(credentials)).digest("hex");
}
