import { describe, expect, it } from "vitest";
import {
  fillPlaceholders,
  formatReference,
  type IssuedReference,
  isIssued,
  issuanceKey,
  isValidEnvName,
  parseReference,
  splitList,
  targetName,
} from "./reference.ts";

describe("parseReference", () => {
  it.each([
    ["myapp/password", { path: "myapp", field: "password" }],
    ["myapp/db#password", { path: "myapp/db", field: "password" }],
    ["team/app/db/password", { path: "team/app/db", field: "password" }],
    ["myapp/db#password@3", { path: "myapp/db", field: "password", version: 3 }],
    ["myapp/password@12", { path: "myapp", field: "password", version: 12 }],
    ["vault:myapp/db#user", { backend: "vault", path: "myapp/db", field: "user" }],
    ["custodia:myapp/password", { backend: "custodia", path: "myapp", field: "password" }],
    ["a.b/c_d-e#tls.crt", { path: "a.b/c_d-e", field: "tls.crt" }],
  ])("parses %s", (raw, expected) => {
    expect(parseReference(raw)).toEqual({ ok: true, reference: expected });
  });

  it.each([
    ["", "empty"],
    ["password", "needs a secret and a field"],
    ["/etc/passwd", "must be relative"],
    ["myapp/../../sys/mounts", '".."'],
    ["myapp//password", "empty"],
    ["./password", '"."'],
    ["myapp/db#", "field"],
    ["myapp/db#a/b", "field"],
    ["myapp/db#pass word", "field"],
    ["myapp/password@0", "positive integer"],
    ["myapp/password@latest", "positive integer"],
    ["myapp/password@", "positive integer"],
    ["aws:myapp/password", 'unknown backend "aws"'],
    ["custodia:myapp/db#password", "no fields"],
    ["custodia:myapp/password@2", "no versions"],
    [" myapp/password", "whitespace"],
    ["myapp/pass\u0000word", "may only use"],
    ["my app/password", "may only use"],
    ["myapp/db#pass\nword", "field"],
    ["myapp/db#\u202Edrowssap", "field"],
    ["myapp/db#pass\u200Bword", "field"],
    ["x/".repeat(600), "longer than"],
  ])("rejects %j (%s)", (raw, reason) => {
    const parsed = parseReference(raw);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toContain("invalid reference");
      expect(parsed.error).toContain(reason);
    }
  });

  it("round-trips through its canonical form", () => {
    for (const raw of ["myapp/password", "vault:a/b#c@2", "custodia:x/y"]) {
      const parsed = parseReference(raw);
      if (!parsed.ok) throw new Error(parsed.error);
      expect(parseReference(formatReference(parsed.reference))).toEqual(parsed);
    }
  });
});

function issued(raw: string): IssuedReference {
  const parsed = parseReference(raw);
  if (!parsed.ok) throw new Error(parsed.error);
  if (!isIssued(parsed.reference)) throw new Error(`${raw} is not an issued reference`);
  return parsed.reference;
}

/** Parameters as the parser returns them, from `name=value` texts in name order. */
const params = (...pairs: string[]) =>
  pairs.map((pair) => ({ name: pair.slice(0, pair.indexOf("=")), value: pair.slice(pair.indexOf("=") + 1) }));

describe("parseReference: issued references", () => {
  it.each([
    ["issue:database/creds/app#username", { path: "database/creds/app", field: "username" }],
    ["issue:pki/issue/web?#certificate", { path: "pki/issue/web", parameters: [], field: "certificate" }],
    [
      "issue:pki/issue/web?ttl=24h&common_name=web.shop.svc&alt_names=a.shop.svc,b.shop.svc#private_key",
      {
        path: "pki/issue/web",
        parameters: params("alt_names=a.shop.svc,b.shop.svc", "common_name=web.shop.svc", "ttl=24h"),
        field: "private_key",
      },
    ],
    [
      "issue:team/pki/issue/web?common_name={pod.name}.{pod.namespace}.svc&uri_sans=spiffe://c/ns/{pod.namespace}/sa/{pod.serviceAccount}#certificate",
      {
        path: "team/pki/issue/web",
        parameters: params("common_name={pod.name}.{pod.namespace}.svc", "uri_sans=spiffe://c/ns/{pod.namespace}/sa/{pod.serviceAccount}"),
        field: "certificate",
      },
    ],
    [
      "issue:pki/issue/web?other_sans=1.3.6.1.4.1.311.20.2.3;UTF8:a%40b.example&ip_sans=$(POD_IP)#ca_chain",
      {
        path: "pki/issue/web",
        parameters: params("ip_sans=$(POD_IP)", "other_sans=1.3.6.1.4.1.311.20.2.3;UTF8:a@b.example"),
        field: "ca_chain",
      },
    ],
    [
      "issue:pki/issue/web?common_name=a%20b%26c%23d#certificate",
      { path: "pki/issue/web", parameters: params("common_name=a b&c#d"), field: "certificate" },
    ],
  ])("parses %s", (raw, expected) => {
    expect(parseReference(raw)).toEqual({ ok: true, reference: { kind: "issued", backend: "vault", ...expected } });
  });

  it.each([
    ["issue:database/creds/app", 'needs "#<field>"'],
    ["issue:database/creds/app#", "field"],
    ["issue:database#password", "must name a mount and an endpoint"],
    ["issue:/pki/issue/web?#certificate", "must be relative"],
    ["issue:pki/../sys/mounts#x", '".."'],
    ["issue:sys/wrapping/wrap?#token", "cannot use sys/ paths"],
    ["issue:auth/token/create?#client_token", "cannot use auth/ paths"],
    ["issue:pki/issue/web?common_name#certificate", 'has no "=<value>"'],
    ["issue:pki/issue/web?CommonName=x#certificate", "parameter name"],
    ["issue:pki/issue/web?ttl=1h&ttl=2h#certificate", "given twice"],
    ["issue:pki/issue/web?common_name=a b#certificate", "URL-query characters"],
    ["issue:pki/issue/web?common_name={pod.ip}#certificate", "unknown placeholder {pod.ip}"],
    ["issue:pki/issue/web?common_name={x}#certificate", "URL-query characters"],
    ["issue:pki/issue/web?common_name=%7Bpod.name%7D#certificate", 'literal "{" "}"'],
    ["issue:pki/issue/web?common_name=%0A#certificate", "control characters"],
    ["issue:pki/issue/web?common_name=%ff#certificate", "UTF-8"],
    ["issue:pki/issue/web?common_name=%zz#certificate", "URL-query characters"],
    ["issue:pki/issue/web?&#certificate", "parameter name"],
    ["vault:issue:pki/issue/web?#certificate", "may only use"],
    ["issued:pki/issue/web?#certificate", 'unknown backend "issued"'],
  ])("rejects %j (%s)", (raw, reason) => {
    const parsed = parseReference(raw);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(reason);
  });

  it("refuses sys/ and auth/ after a Vault namespace prefix too (#13 item 7), not a role named like them", () => {
    for (const [raw, reserved] of [
      ["issue:ns1/sys/mounts/pwned?type=kv#x", "sys"],
      ["issue:ns1/team/auth/token/create?#client_token", "auth"],
      ["issue:ns1/auth/kubernetes/login?role=x&jwt=y#client_token", "auth"],
    ]) {
      const parsed = parseReference(raw as string);
      expect(parsed.ok, raw).toBe(false);
      if (!parsed.ok) expect(parsed.error).toContain(`cannot use ${reserved}/ paths`);
    }
    expect(parseReference("issue:ns1/pki/issue/sys?common_name=a#certificate").ok).toBe(true);
  });

  it("gives equal issuance keys to equal paths and parameters, whatever their order", () => {
    const a = issued("issue:pki/issue/web?ttl=1h&common_name=x.svc#certificate");
    const b = issued("issue:pki/issue/web?common_name=x.svc&ttl=1h#private_key");
    expect(issuanceKey(a)).toBe(issuanceKey(b));
    expect(issuanceKey(a)).toBe("issue:pki/issue/web?common_name=x.svc&ttl=1h");
    expect(issuanceKey(issued("issue:pki/issue/web?common_name=y.svc&ttl=1h#certificate"))).not.toBe(issuanceKey(a));
    expect(issuanceKey(issued("issue:database/creds/app#username"))).toBe("issue:database/creds/app");
    expect(issuanceKey(issued("issue:database/creds/app?#username"))).toBe("issue:database/creds/app?");
  });

  it("round-trips through its canonical form, escapes included", () => {
    for (const raw of [
      "issue:database/creds/app#username",
      "issue:pki/issue/web?#certificate",
      "issue:pki/issue/web?common_name=a%20b%26c%23d%25&ttl=1h#certificate",
      "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc#private_key",
    ]) {
      const parsed = parseReference(raw);
      if (!parsed.ok) throw new Error(parsed.error);
      expect(formatReference(parsed.reference)).toBe(raw);
      expect(parseReference(formatReference(parsed.reference))).toEqual(parsed);
    }
  });

  it("fills placeholders from the pod's identity, and names those it lacks", () => {
    const reference = issued("issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc&uri_sans=sa/{pod.serviceAccount}#certificate");
    expect(fillPlaceholders(reference, { "pod.name": "web-0", "pod.namespace": "shop", "pod.serviceAccount": "web" })).toEqual({
      reference: { ...reference, parameters: params("common_name=web-0.shop.svc", "uri_sans=sa/web") },
    });
    expect(fillPlaceholders(reference, { "pod.name": "web-0" })).toEqual({ unknown: ["pod.namespace", "pod.serviceAccount"] });
    const plain = issued("issue:database/creds/app#password");
    expect(fillPlaceholders(plain, {})).toEqual({ reference: plain });
  });

  it("leaves every static reference as it was (no kind, same fields)", () => {
    const parsed = parseReference("myapp/db#password@2");
    expect(parsed).toEqual({ ok: true, reference: { path: "myapp/db", field: "password", version: 2 } });
    if (parsed.ok) expect(isIssued(parsed.reference)).toBe(false);
  });
});

describe("targetName", () => {
  it("strips the prefix", () => {
    expect(targetName("SECRET_DB_PASSWORD", "SECRET_")).toBe("DB_PASSWORD");
    expect(targetName("SECRET_", "SECRET_")).toBeUndefined();
    expect(targetName("PASSWORD", "SECRET_")).toBeUndefined();
  });
});

describe("isValidEnvName", () => {
  it.each([
    ["PASSWORD", true],
    ["_x1", true],
    ["1X", false],
    ["A-B", false],
    ["A=B", false],
    ["", false],
  ])("%j → %s", (name, valid) => {
    expect(isValidEnvName(name)).toBe(valid);
  });
});

describe("splitList", () => {
  it("trims and drops empty items", () => {
    expect(splitList(" a, b,,c ")).toEqual(["a", "b", "c"]);
    expect(splitList(undefined)).toEqual([]);
  });
});
