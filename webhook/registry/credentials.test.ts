import { describe, expect, it } from "vitest";
import {
  credentialsFor,
  credentialsFromPullSecrets,
  normalizeKey,
  type PullSecretData,
  parsePullSecret,
  type RegistryCredential,
} from "./credentials.ts";

const b64 = (text: string) => Buffer.from(text).toString("base64");
const configJson = (auths: unknown): PullSecretData => ({
  type: "kubernetes.io/dockerconfigjson",
  data: { ".dockerconfigjson": b64(JSON.stringify({ auths })) },
});
const SECRET_VALUE = "s3cr3t-value";

describe("parsePullSecret", () => {
  it.each([
    {
      name: "auth field",
      secret: configJson({ "https://index.docker.io/v1/": { auth: b64("user:pa:ss") } }),
      want: [{ registry: "index.docker.io", username: "user", password: "pa:ss" }],
    },
    {
      name: "username and password",
      secret: configJson({ "registry.example.com:5000": { username: "u", password: "p", email: "x@example.com" } }),
      want: [{ registry: "registry.example.com:5000", username: "u", password: "p" }],
    },
    {
      name: "auth wins over username/password",
      secret: configJson({ "quay.io": { username: "ignored", password: "ignored", auth: b64("real:pw") } }),
      want: [{ registry: "quay.io", username: "real", password: "pw" }],
    },
    {
      name: "identity and registry tokens",
      secret: configJson({ "a.io": { identitytoken: "refresh" }, "b.io": { registrytoken: "bearer" } }),
      want: [
        { registry: "a.io", identityToken: "refresh" },
        { registry: "b.io", registryToken: "bearer" },
      ],
    },
    {
      name: "dockercfg bare map",
      secret: {
        type: "kubernetes.io/dockercfg",
        data: { ".dockercfg": b64(JSON.stringify({ "http://gcr.io/v2/project": { auth: b64("_json_key:k") } })) },
      },
      want: [{ registry: "gcr.io/project", username: "_json_key", password: "k" }],
    },
    { name: "empty auths", secret: configJson({}), want: [] },
  ])("reads $name", ({ secret, want }) => {
    const parsed = parsePullSecret(secret, "team/pull");
    expect(parsed).toEqual({ ok: true, credentials: want.map((credential) => ({ ...credential, source: "team/pull" })) });
  });

  it.each([
    { name: "an Opaque secret", secret: { type: "Opaque", data: {} }, why: 'has type "Opaque"' },
    {
      name: "a missing key",
      secret: { type: "kubernetes.io/dockerconfigjson", data: { ".dockercfg": b64("{}") } },
      why: "no data key .dockerconfigjson",
    },
    {
      name: "non-JSON data",
      secret: { type: "kubernetes.io/dockercfg", data: { ".dockercfg": b64(`{${SECRET_VALUE}`) } },
      why: "not base64-encoded JSON",
    },
    { name: "no auths", secret: { type: "kubernetes.io/dockerconfigjson", data: { ".dockerconfigjson": b64("{}") } }, why: 'no "auths"' },
    { name: "auth without a colon", secret: configJson({ "a.io": { auth: b64(SECRET_VALUE) } }), why: '"auth" must be base64' },
    { name: "a non-string password", secret: configJson({ "a.io": { password: 42 } }), why: '"password" must be a string' },
    { name: "an entry that is no object", secret: configJson({ "a.io": SECRET_VALUE }), why: 'entry for "a.io" must be an object' },
  ])("rejects $name without quoting values", ({ secret, why }) => {
    const parsed = parsePullSecret(secret as PullSecretData, "team/pull");
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toContain("image pull secret team/pull");
      expect(parsed.error).toContain(why);
      expect(parsed.error).not.toContain(SECRET_VALUE);
    }
  });
});

describe("credentialsFromPullSecrets", () => {
  it("joins the credentials of every readable secret and says what the others lack", () => {
    const found = credentialsFromPullSecrets([
      { name: "first", ...configJson({ "a.io": { username: "a", password: "p" } }) },
      { name: "opaque", type: "Opaque", data: {} },
      { name: "second", ...configJson({ "b.io": { username: "b", password: "p" } }) },
    ]);
    expect(found.map((credential) => [credential.registry, credential.source])).toEqual([
      ["a.io", "first"],
      ["b.io", "second"],
    ]);
    expect(found.problems).toEqual([expect.stringContaining('image pull secret opaque: has type "Opaque"')]);
  });
});

describe("normalizeKey", () => {
  it.each([
    ["https://index.docker.io/v1/", "index.docker.io"],
    ["http://host:5000", "host:5000"],
    ["host:5000/v2/", "host:5000"],
    ["https://host/v2/ns/app", "host/ns/app"],
    ["host/ns", "host/ns"],
    ["*.example.com", "*.example.com"],
  ])("normalizes %s to %s", (key, want) => {
    expect(normalizeKey(key)).toBe(want);
  });
});

describe("credentialsFor", () => {
  const credential = (registry: string, username = registry): RegistryCredential => ({ registry, username, password: "p" });
  const users = (found: RegistryCredential[]) => found.map((one) => one.username);
  /** `host/repository` as parseImageName splits it: the registry is the first component. */
  const endpoint = (target: string) => {
    const [registry = "", repository = ""] = target.split(/\/(.*)/s);
    return { registry, repository };
  };

  it.each([
    { name: "exact host", keys: ["quay.io", "gcr.io"], target: "quay.io/org/app", want: ["quay.io"] },
    { name: "host with port", keys: ["127.0.0.1:5000"], target: "127.0.0.1:5000/kustodia-test/app", want: ["127.0.0.1:5000"] },
    { name: "port must match", keys: ["127.0.0.1:5001", "127.0.0.1"], target: "127.0.0.1:5000/app", want: [] },
    { name: "bare host as target", keys: ["127.0.0.1:5000"], target: "127.0.0.1:5000", want: ["127.0.0.1:5000"] },
    { name: "glob label", keys: ["*.example.com"], target: "registry.example.com/app", want: ["*.example.com"] },
    { name: "glob does not span labels", keys: ["*.example.com"], target: "a.b.example.com/app", want: [] },
    { name: "glob needs a label", keys: ["*.example.com"], target: "example.com/app", want: [] },
    { name: "glob with ? and class", keys: ["reg?.[a-c]x.io"], target: "reg1.bx.io/app", want: ["reg?.[a-c]x.io"] },
    { name: "more specific path first", keys: ["quay.io", "quay.io/org"], target: "quay.io/org/app", want: ["quay.io/org", "quay.io"] },
    { name: "path prefix must match", keys: ["quay.io/other"], target: "quay.io/org/app", want: [] },
    { name: "docker hub by docker.io key", keys: ["docker.io"], target: "docker.io/library/nginx", want: ["docker.io"] },
    { name: "docker hub by legacy key", keys: ["index.docker.io"], target: "docker.io/library/nginx", want: ["index.docker.io"] },
    {
      name: "legacy key only when nothing else matched",
      keys: ["index.docker.io", "docker.io"],
      target: "docker.io/user/app",
      want: ["docker.io"],
    },
    { name: "legacy key not for other registries", keys: ["index.docker.io"], target: "quay.io/app", want: [] },
    { name: "IPv6 host", keys: ["[::1]:5000"], target: "[::1]:5000/app", want: ["[::1]:5000"] },
    { name: "no Hub key for localhost", keys: ["index.docker.io"], target: "localhost/team/app", want: [] },
    { name: "no Hub key for an upper-case host", keys: ["index.docker.io"], target: "LOCALHOST/team/app", want: [] },
    { name: "no Hub key for a dotless mirror host", keys: ["index.docker.io"], target: "mirror/library/nginx", want: [] },
  ])("matches $name", ({ keys, target, want }) => {
    expect(
      users(
        credentialsFor(
          endpoint(target),
          keys.map((key) => credential(key)),
        ),
      ),
    ).toEqual(want);
  });

  it("keeps every credential of a key, in order, so that each can be tried", () => {
    const found = credentialsFor(endpoint("quay.io/app"), [
      credential("quay.io", "first"),
      credential("gcr.io"),
      credential("quay.io", "second"),
    ]);
    expect(users(found)).toEqual(["first", "second"]);
  });

  it("matches keys written as URLs once parsed", () => {
    const parsed = parsePullSecret(configJson({ "https://127.0.0.1:5000/v2/": { auth: b64("u:p") } }), "ns/s");
    if (!parsed.ok) throw new Error(parsed.error);
    expect(users(credentialsFor(endpoint("127.0.0.1:5000/app"), parsed.credentials))).toEqual(["u"]);
  });
});
