// The webhook's image ENTRYPOINT/CMD lookup over the OCI Distribution API: tag → digest (HEAD),
// index → platform manifest → config blob, each checked against its digest. Mirrors are tried
// before the registry itself; answers are cached (tags for a while, content by digest for good);
// identical concurrent lookups share one; each lookup has one deadline. Errors come back as values.
import { createHash } from "node:crypto";
import type { ImageConfig, ImageLookupResult, Platform } from "../image-facts.ts";
import type { Metrics } from "../metrics.ts";
import type { RegistrySettings } from "../settings.ts";
import { createAuthenticator } from "./auth.ts";
import { createLru, createTtlLru } from "./cache.ts";
import { credentialsFor, type RegistryCredential } from "./credentials.ts";
import { createTransport } from "./http.ts";
import { formatImageName, type ImageName, manifestReference, parseImageName } from "./image-name.ts";
import { ContentError, MANIFEST_ACCEPT, type Manifest, readImageConfig, readManifest, sha256Digest, verifyDigest } from "./manifest.ts";
import { formatPlatform, normalizePlatform, selectPlatform } from "./platform.ts";
import { createSession, LookupError, type Session, type SessionContext } from "./session.ts";

export type { RegistryCredential } from "./credentials.ts";

export interface ImageConfigOptions {
  /** The pod's pinned architecture (nodeSelector `kubernetes.io/arch`); the configured default otherwise. */
  architecture?: string;
  /** The pod's pull-secret credentials; those matching the registry are tried in order. */
  credentials: readonly RegistryCredential[];
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

export function createRegistryClient(settings: RegistrySettings, metrics: Metrics): RegistryClient {
  const transport = createTransport({ concurrency: settings.concurrency, ...(settings.caFile ? { caFile: settings.caFile } : {}) });
  const authenticator = createAuthenticator({
    transport,
    cacheSize: settings.cacheSize,
    plainHttp: settings.plainHttp,
    maxBytes: MAX_DOCUMENT_BYTES,
  });
  const tags = createTtlLru<string>(settings.cacheSize, settings.cacheTtlMs);
  const configs = createLru<ImageConfig>(settings.cacheSize);
  const inFlight = new Map<string, Promise<ImageConfig>>();

  /** From the caches: the config when both the tag (if any) and the content are known. */
  function cached(name: ImageName, platformKey: string, scope: string): { digest?: string; config?: ImageConfig } {
    const digest = name.digest ?? tags.get(tagKey(name, scope));
    if (digest === undefined) return {};
    if (!name.digest) metrics.registryCacheHits.inc({ cache: "tag" });
    const config = configs.get(configKey(digest, platformKey, scope));
    if (config) metrics.registryCacheHits.inc({ cache: "config" });
    return config ? { digest, config } : { digest };
  }

  async function lookup(name: ImageName, platform: Platform, credentials: readonly RegistryCredential[]): Promise<ImageConfig> {
    const platformKey = formatPlatform(platform);
    // Answers obtained with a pod's pull secrets are cached for pods holding the same credentials
    // only: a pod without them must not learn a private image's ENTRYPOINT from the cache.
    const scope = fingerprint(credentialsFor(`${name.registry}/${name.repository}`, credentials));
    const known = cached(name, platformKey, scope);
    if (known.config) return known.config;
    const signal = AbortSignal.timeout(settings.timeoutMs);
    const context: SessionContext = {
      transport,
      authenticator,
      signal,
      timeoutMs: settings.timeoutMs,
      maxBytes: MAX_DOCUMENT_BYTES,
      plainHttp: settings.plainHttp,
    };
    const attempt = (host: string, credentialTarget: string) => {
      const session = createSession(context, host, name.repository, credentialsFor(`${credentialTarget}/${name.repository}`, credentials));
      return lookupAt(session, name, known.digest, platform, platformKey, scope);
    };
    const failures: string[] = [];
    for (const mirror of settings.mirrors[name.registry] ?? []) {
      try {
        return await attempt(mirror, mirror);
      } catch (error) {
        if (!(error instanceof LookupError) || signal.aborted) throw withMirrorFailures(error, failures);
        failures.push(error.message);
      }
    }
    try {
      return await attempt(name.apiHost, name.registry);
    } catch (error) {
      throw withMirrorFailures(error, failures);
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
    const platform = normalizePlatform(wantedPlatform(settings.defaultPlatform, options.architecture));
    const key = JSON.stringify([formatImageName(parsed.name), formatPlatform(platform), fingerprint(options.credentials)]);
    let pending = inFlight.get(key);
    if (!pending) {
      pending = lookup(parsed.name, platform, options.credentials).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    try {
      return { ok: true, config: structuredClone(await pending) };
    } catch (error) {
      return {
        ok: false,
        error: error instanceof LookupError ? error.message : `unexpected error looking up ${image}: ${(error as Error).message}`,
      };
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

/** Content errors are lookup errors: the next endpoint may serve good content. */
function checked<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw error instanceof ContentError ? new LookupError(error.message) : error;
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
  return new LookupError(`${error.message} (mirrors tried first: ${failures.join("; ")})`);
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
