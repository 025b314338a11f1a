import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { placeholderValues, podIdentity, tokenClaims } from "./identity.ts";

const jwt = (claims: object) => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2lnbmF0dXJl`;
const bound = {
  iss: "https://kubernetes.default.svc",
  sub: "system:serviceaccount:shop:web",
  "kubernetes.io": { namespace: "shop", pod: { name: "web-7d9f", uid: "u1" }, serviceaccount: { name: "web", uid: "u2" } },
};
const legacy = { "kubernetes.io/serviceaccount/namespace": "shop", "kubernetes.io/serviceaccount/service-account.name": "web" };

function tokenFile(content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "kustodia-identity-")), "token");
  writeFileSync(file, content);
  return file;
}

describe("tokenClaims", () => {
  it.each([
    ["a bound token", jwt(bound), { namespace: "shop", name: "web-7d9f", serviceAccount: "web" }],
    ["a legacy Secret-based token", jwt(legacy), { namespace: "shop", serviceAccount: "web" }],
    ["not a JWT", "not-a-jwt", {}],
    ["a JWT with a payload that is not JSON", "a.bm90IGpzb24.c", {}],
  ])("reads %s", (_, token, expected) => {
    expect(JSON.parse(JSON.stringify(tokenClaims(token)))).toEqual(expected);
  });
});

describe("podIdentity", () => {
  it("takes the downward-API env vars first", () => {
    const env = { KUSTODIA_POD_NAME: "api-0", KUSTODIA_POD_NAMESPACE: "team", KUSTODIA_POD_SERVICE_ACCOUNT: "api" };
    expect(podIdentity(env, tokenFile(jwt(bound)))).toEqual({
      name: "api-0",
      namespace: "team",
      serviceAccount: "api",
      sources: { name: "KUSTODIA_POD_NAME", namespace: "KUSTODIA_POD_NAMESPACE", serviceAccount: "KUSTODIA_POD_SERVICE_ACCOUNT" },
      ignored: [],
    });
  });

  it("fills in from the ServiceAccount token what the env does not say", () => {
    const file = tokenFile(`${jwt(bound)}\n`);
    const identity = podIdentity({ KUSTODIA_POD_NAME: "api-0" }, file);
    expect(placeholderValues(identity)).toEqual({ "pod.name": "api-0", "pod.namespace": "shop", "pod.serviceAccount": "web" });
    expect(identity.sources.namespace).toBe(`ServiceAccount token ${file}`);
  });

  it("ignores values that are not Kubernetes names, and says so", () => {
    const identity = podIdentity({ KUSTODIA_POD_NAME: "Web_0;rm -rf" }, tokenFile(jwt({ "kubernetes.io": { namespace: "a/b" } })));
    expect(placeholderValues(identity)).toEqual({});
    expect(identity.ignored).toEqual(['KUSTODIA_POD_NAME="Web_0;rm -rf" is not a Kubernetes name; ignored']);
  });

  it("knows nothing without env and token", () => {
    expect(placeholderValues(podIdentity({}, "/nonexistent/token"))).toEqual({});
  });
});
