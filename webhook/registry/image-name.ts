// Image references as Kubernetes, containerd and docker read them (distribution's
// `reference.ParseNormalizedNamed`): `nginx` is docker.io/library/nginx:latest, the first path
// component is a registry host only when it has a "." or ":", is "localhost", or has an upper-case
// letter (repository paths are lower case, so distribution reads `LOCALHOST/app` as host LOCALHOST),
// and a digest wins over a tag. This is the one reading of a name: the host connected to and the
// host whose pull-secret credentials are sent come from it alike (credentials.ts).

export interface ImageName {
  /** The registry as written in references (`docker.io`, `quay.io`, `127.0.0.1:5000`): the key for mirrors and credentials. */
  registry: string;
  /** Where the Distribution API is served: the registry itself, or `registry-1.docker.io` for the Docker Hub. */
  apiHost: string;
  /** Repository inside the registry: `library/nginx`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export type ParsedImageName = { ok: true; name: ImageName } | { ok: false; error: string };

export const DOCKER_HUB = "docker.io";
const DOCKER_HUB_LEGACY = "index.docker.io";
const DOCKER_HUB_API = "registry-1.docker.io";
const DOCKER_HUB_AUTH = "auth.docker.io";
const OFFICIAL_PREFIX = "library/";
const DEFAULT_TAG = "latest";
const MAX_NAME_LENGTH = 255;

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
const IMAGE_ID = /^[a-f0-9]{64}$/;

/** Parses an image reference as a container runtime would; errors say what is wrong with it. */
export function parseImageName(image: string): ParsedImageName {
  const invalid = (why: string): ParsedImageName => ({
    ok: false,
    error: `image ${JSON.stringify(image)} is not a valid image reference: ${why}`,
  });
  if (image === "") return invalid("it is empty");
  if (IMAGE_ID.test(image)) return invalid("64-character hex strings are image IDs, not references");

  const [nameAndTag = "", digest, extra] = image.split("@");
  if (extra !== undefined) return invalid('it has more than one "@"');
  if (digest !== undefined) {
    const digestError = checkDigest(digest);
    if (digestError) return invalid(digestError);
  }
  const { name, tag } = splitTag(nameAndTag);
  if (tag !== undefined && !TAG.test(tag)) {
    return invalid(`the tag ${JSON.stringify(tag)} must be 1-128 letters, digits, "_", "." or "-", not starting with "." or "-"`);
  }
  const { registry, repository } = splitRegistry(name);
  const nameError = checkName(registry, repository);
  if (nameError) return invalid(nameError);

  const parsed: ImageName = { registry, apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry, repository };
  if (digest !== undefined) parsed.digest = digest;
  if (tag !== undefined) parsed.tag = tag;
  else if (digest === undefined) parsed.tag = DEFAULT_TAG;
  return { ok: true, name: parsed };
}

/** `docker.io/library/nginx:latest`, `host:5000/app@sha256:…` (the digest, when there is one, is what is fetched). */
export function formatImageName(name: ImageName): string {
  return `${name.registry}/${name.repository}${name.digest ? `@${name.digest}` : `:${name.tag ?? DEFAULT_TAG}`}`;
}

/** The manifest reference to fetch: the digest when given, else the tag. */
export function manifestReference(name: ImageName): string {
  return name.digest ?? name.tag ?? DEFAULT_TAG;
}

/** The token endpoint host a registry API host is known to use besides its own: Docker Hub's. */
export function tokenRealmOf(apiHostname: string): string | undefined {
  return apiHostname === DOCKER_HUB_API ? DOCKER_HUB_AUTH : undefined;
}

/** A tag follows the last ":" only when no "/" comes after it (`host:5000/app` has no tag). */
function splitTag(nameAndTag: string): { name: string; tag?: string } {
  const colon = nameAndTag.lastIndexOf(":");
  if (colon === -1 || nameAndTag.indexOf("/", colon) !== -1) return { name: nameAndTag };
  return { name: nameAndTag.slice(0, colon), tag: nameAndTag.slice(colon + 1) };
}

function splitRegistry(name: string): { registry: string; repository: string } {
  const slash = name.indexOf("/");
  const first = name.slice(0, slash);
  const isHost = slash !== -1 && (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first);
  let registry = isHost ? first : DOCKER_HUB;
  const repository = isHost ? name.slice(slash + 1) : name;
  if (registry === DOCKER_HUB_LEGACY) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes("/")) return { registry, repository: `${OFFICIAL_PREFIX}${repository}` };
  return { registry, repository };
}

function checkName(registry: string, repository: string): string | undefined {
  if (!HOST.test(registry)) return `the registry host ${JSON.stringify(registry)} is not a host name or IP address with an optional port`;
  if (repository === "") return "the repository name is empty";
  if (repository.toLowerCase() !== repository) return `the repository name ${JSON.stringify(repository)} must be lowercase`;
  const bad = repository.split("/").find((component) => !PATH_COMPONENT.test(component));
  if (bad !== undefined) {
    return `the path component ${JSON.stringify(bad)} must be lowercase letters and digits, separated by ".", "_", "__" or "-"`;
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) return `the name is longer than ${MAX_NAME_LENGTH} characters`;
  return undefined;
}

function checkDigest(digest: string): string | undefined {
  const wrong = `the digest ${JSON.stringify(digest)} must be <algorithm>:<hex>, like sha256: followed by 64 hex digits`;
  if (!DIGEST.test(digest)) return wrong;
  const [algorithm = "", hex = ""] = digest.split(":");
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) return `the digest algorithm ${JSON.stringify(algorithm)} is not supported (sha256, sha384, sha512)`;
  return hex.length === length && hex.toLowerCase() === hex ? undefined : wrong;
}
