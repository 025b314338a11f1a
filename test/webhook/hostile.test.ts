// Hostile input to the real webhook over HTTPS (DESIGN §4 "Malformed review", §6.5): every request
// here gets a clear 4xx, or a valid AdmissionReview with a denial or warnings — never a crash, never a
// hang, never a change of behaviour for the requests after it. After each case the server must still
// be alive, answer /healthz, and admit a normal pod exactly as it did before the attack.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Annotations } from "../../common/contract.ts";
import { applyResponse, type HttpAnswer, podCreateReview, type RunningWebhook, readAnswer, startWebhook } from "./harness.ts";

const normalPod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "team-a", annotations: { [Annotations.inject]: "true" } },
  spec: {
    containers: [
      {
        name: "app",
        image: "registry.invalid/app:1",
        command: ["/app/server"],
        env: [{ name: "SECRET_DB_PASSWORD", value: "myapp/db#password" }],
      },
    ],
  },
};

/** A pod like `normalPod` with its app container's env (and optionally annotations, fields) replaced. */
function podWith(options: { env?: unknown[]; annotations?: Record<string, string>; container?: Record<string, unknown> } = {}) {
  // biome-ignore lint/suspicious/noExplicitAny: a free-form pod, edited field by field
  const pod = structuredClone(normalPod) as Record<string, any>;
  if (options.annotations) pod.metadata.annotations = { ...pod.metadata.annotations, ...options.annotations };
  if (options.env) pod.spec.containers[0].env = options.env;
  if (options.container) Object.assign(pod.spec.containers[0], options.container);
  return pod;
}

/** An AdmissionReview v1 envelope around `request` fields, as text (no uid unless given). */
function envelope(requestFields: Record<string, unknown>, top: Record<string, unknown> = {}): string {
  return JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", ...top, request: requestFields });
}

const podKind = { group: "", version: "v1", kind: "Pod" };
/** What must never reach a terminal through kubectl: control characters, bidi overrides. */
const CONTROL = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

describe("hostile requests to the webhook over HTTPS", () => {
  let webhook: RunningWebhook;
  /** The answer to `normalPod` before any hostile request, less its uid. */
  let baseline: Record<string, unknown>;

  /** POSTs `body` as it is (a Buffer's bytes are sent verbatim). */
  const post = (body: string | Buffer, headers: Record<string, string> = { "content-type": "application/json" }) =>
    webhook.post("/mutate", body, headers);

  /** A normal admission: must produce exactly the patch it produced before any hostile request. */
  async function expectStillNormal(): Promise<void> {
    expect(webhook.process.exitCode, "the webhook process is alive").toBeNull();
    expect(webhook.process.signalCode).toBeNull();
    const health = await webhook.get("/healthz");
    expect(health.status).toBe(200);
    expect(health.text).toBe("ok");
    const { uid, body } = podCreateReview(normalPod, "team-a");
    const answer = await post(body);
    expect(answer.status).toBe(200);
    expect(answer.json.response.uid).toBe(uid);
    expect(answer.json.response.allowed).toBe(true);
    expect({ ...answer.json.response, uid: undefined }).toEqual(baseline);
  }

  /** A 4xx with `{"error": "..."}` containing `message`. */
  function expectClientError(answer: HttpAnswer, status: number, message: string | RegExp): void {
    expect(answer.status, answer.text.slice(0, 300)).toBe(status);
    expect(answer.json?.error).toEqual(expect.stringMatching(message));
    expect(answer.text.length, "the error does not echo a big body back").toBeLessThan(2048);
  }

  /** A 200 with a valid AdmissionReview for `uid`; returns its response. */
  // biome-ignore lint/suspicious/noExplicitAny: the response is checked field by field
  function expectReview(answer: HttpAnswer, uid: string): Record<string, any> {
    expect(answer.status, answer.text.slice(0, 300)).toBe(200);
    expect(answer.json).toMatchObject({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid } });
    expect(typeof answer.json.response.allowed).toBe("boolean");
    for (const warning of answer.json.response.warnings ?? []) {
      expect(warning, "warnings carry no raw control characters (terminal escapes, newlines)").not.toMatch(CONTROL);
      expect(warning.length, "warnings stay short").toBeLessThanOrEqual(512);
    }
    expect(answer.json.response.warnings?.length ?? 0, "a bounded number of warnings").toBeLessThanOrEqual(21);
    return answer.json.response;
  }

  beforeAll(async () => {
    webhook = await startWebhook({ env: { KUSTODIA_LOG_LEVEL: "debug" } });
    const answer = await post(podCreateReview(normalPod, "team-a").body);
    expect(answer.status).toBe(200);
    baseline = { ...answer.json.response, uid: undefined };
    expect(applyResponse(normalPod, answer.json.response).spec.containers[0]?.command).toEqual([
      "/kustodia/kustodia-shim",
      "--",
      "/app/server",
    ]);
  });
  afterAll(async () => {
    await webhook?.stop();
  });

  describe("malformed envelopes get HTTP 400 naming what is wrong", () => {
    it.each([
      ["truncated JSON", '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionRev', "request body is not valid JSON"],
      ["trailing garbage", `${envelope({ uid: "x" })}}}`, "request body is not valid JSON"],
      ["an empty body", "", 'apiVersion must be "admission.k8s.io/v1"'],
      ["a bare string", '"AdmissionReview"', "request body is not valid JSON"],
      ["null", "null", "request body is not valid JSON"],
      ["an array", "[]", "must be a JSON object"],
      ["NaN", '{"apiVersion": NaN}', "request body is not valid JSON"],
      ["single quotes", "{'apiVersion': 'admission.k8s.io/v1'}", "request body is not valid JSON"],
      ["a NUL byte", '{"apiVersion":"admission.k8s.io/v1"\u0000}', "request body is not valid JSON"],
      [
        "apiVersion v1beta1",
        envelope({ uid: "u" }, { apiVersion: "admission.k8s.io/v1beta1" }),
        'apiVersion must be "admission.k8s.io/v1"',
      ],
      ["apiVersion as an object", envelope({ uid: "u" }, { apiVersion: { v: 1 } }), "apiVersion must be"],
      ["no apiVersion", JSON.stringify({ kind: "AdmissionReview", request: { uid: "u" } }), "apiVersion must be"],
      ["kind Pod", envelope({ uid: "u" }, { kind: "Pod" }), 'kind must be "AdmissionReview"'],
      ["kind in lower case", envelope({ uid: "u" }, { kind: "admissionreview" }), 'kind must be "AdmissionReview"'],
      ["no request", JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }), "request must be an object"],
      ["a request that is an array", envelope([] as unknown as Record<string, unknown>), "request must be an object"],
      ["a missing uid", envelope({ kind: podKind, operation: "CREATE" }), "request.uid must be"],
      ["an empty uid", envelope({ uid: "", kind: podKind, operation: "CREATE" }), "request.uid must be"],
      ["a numeric uid", envelope({ uid: 42, kind: podKind, operation: "CREATE" }), "request.uid must be"],
      ["a 10 KiB uid", envelope({ uid: "u".repeat(10 * 1024), kind: podKind, operation: "CREATE" }), "request.uid must be"],
      ["a missing kind", envelope({ uid: "u", operation: "CREATE" }), "request.kind must be"],
      ["a string kind", envelope({ uid: "u", kind: "Pod", operation: "CREATE" }), "request.kind must be"],
      ["a missing operation", envelope({ uid: "u", kind: podKind }), "request.operation must be a string"],
      [
        "an object that is a string",
        envelope({ uid: "u", kind: podKind, operation: "CREATE", object: "pod" }),
        "request.object must be an object",
      ],
      [
        "an object that is an array",
        envelope({ uid: "u", kind: podKind, operation: "CREATE", object: [] }),
        "request.object must be an object",
      ],
    ])("%s", async (_name, body, message) => {
      expectClientError(await post(body), 400, message);
      await expectStillNormal();
    });
  });

  describe("content types other than JSON get HTTP 415", () => {
    const body = podCreateReview(normalPod).body;
    it.each([
      ["text/plain", { "content-type": "text/plain" }, "content-type must be application/json"],
      ["no content type", {}, "content-type must be application/json"],
      ["a form", { "content-type": "application/x-www-form-urlencoded" }, "content-type must be application/json"],
      ["YAML", { "content-type": "application/yaml" }, "content-type must be application/json"],
      ["multipart", { "content-type": "multipart/form-data; boundary=x" }, "content-type must be application/json"],
      ["JSON in UTF-16", { "content-type": "application/json; charset=utf-16" }, /charset|not valid JSON/i],
      ["JSON in latin1", { "content-type": "application/json; charset=iso-8859-1" }, /charset/i],
      ["gzip that is not", { "content-type": "application/json", "content-encoding": "gzip" }, /./],
      ["an unknown encoding", { "content-type": "application/json", "content-encoding": "br-x" }, /encoding/i],
    ])("%s", async (_name, headers, message) => {
      const answer = await post(body, headers as Record<string, string>);
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
      expect(answer.json?.error).toEqual(expect.stringMatching(message));
      await expectStillNormal();
    });
  });

  describe("big bodies", () => {
    it("refuses a 12 MiB body with 413 (declared length)", async () => {
      const big = envelope({ uid: "u", kind: podKind, operation: "CREATE", object: { pad: "x".repeat(12 * 1024 * 1024) } });
      expectClientError(await post(big), 413, "request body larger than the limit of 8388608 bytes");
      await expectStillNormal();
    });

    it("refuses a 12 MiB chunked body without a declared length with 413, and does not buffer it whole", async () => {
      const rssBefore = rssMiB(webhook.process.pid as number);
      const answer = await postChunked(webhook, 12 * 1024 * 1024);
      expectClientError(answer, 413, "request body larger than the limit");
      expect(rssMiB(webhook.process.pid as number) - rssBefore).toBeLessThan(64);
      await expectStillNormal();
    });

    it("admits a pod carrying a 200 KiB annotation of no concern to kustodia, unchanged", async () => {
      const pod = podWith({ annotations: { "example.com/blob": "b".repeat(200 * 1024) } });
      const { uid, body } = podCreateReview(pod, "team-a");
      const response = expectReview(await post(body), uid);
      expect(response.allowed).toBe(true);
      expect(applyResponse(pod, response as never).metadata.annotations["example.com/blob"]).toHaveLength(200 * 1024);
      await expectStillNormal();
    });
  });

  describe("deep nesting", () => {
    const DEPTH = 100_000;
    const deepArray = `${"[".repeat(DEPTH)}${"]".repeat(DEPTH)}`;
    const deepObject = `${'{"a":'.repeat(DEPTH)}1${"}".repeat(DEPTH)}`;
    const inPod = (nested: string) => {
      const { body } = podCreateReview(podWith({ container: { deep: "__DEEP__" } }), "team-a");
      return body.replace('"__DEEP__"', nested);
    };

    it.each([
      ["100k nested arrays as the whole body", deepArray],
      ["100k nested objects as the whole body", deepObject],
      ["100k nested arrays inside an opted-in pod", inPod(deepArray)],
      ["100k nested objects inside an opted-in pod", inPod(deepObject)],
      ["100k nested arrays beside the request", deepArray.replace("[]", envelope({ uid: "u" }))],
    ])("%s: a 4xx, the process alive", async (_name, body) => {
      const answer = await post(body);
      expect(answer.status, answer.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
      expect(answer.json?.error).toEqual(expect.any(String));
      await expectStillNormal();
    });

    it("admits ordinary nesting (64 levels in an unknown field) and keeps it intact", async () => {
      const nested = `${'{"a":'.repeat(64)}1${"}".repeat(64)}`;
      const pod = JSON.parse(inPod(nested)).request.object;
      const { uid, body } = podCreateReview(pod, "team-a");
      const response = expectReview(await post(body), uid);
      expect(response.allowed).toBe(true);
      expect(JSON.stringify(applyResponse(pod, response as never).spec.containers[0].deep)).toBe(nested);
    });
  });

  describe("invalid UTF-8", () => {
    /** A normal review whose text `marker` is replaced by raw bytes. */
    const withBytes = (marker: string, bytes: number[]) => {
      const { uid, body } = podCreateReview(podWith({ env: [{ name: "SECRET_DB_PASSWORD", value: marker }] }), "team-a");
      const [before, after] = body.split(marker) as [string, string];
      return { uid, body: Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]) };
    };

    it.each([
      ["a lone continuation byte", [0x80]],
      ["an overlong encoding of '/'", [0xc0, 0xaf]],
      ["a UTF-16 surrogate half", [0xed, 0xa0, 0x80]],
      ["0xFF 0xFE", [0xff, 0xfe]],
      ["a truncated sequence", [0xe2, 0x82]],
    ])("%s in a reference: the bytes never pass as a path, the reference is flagged", async (_name, bytes) => {
      const { uid, body } = withBytes("__REF__", [...Buffer.from("myapp/db"), ...bytes, ...Buffer.from("#password")]);
      const answer = await post(body);
      if (answer.status !== 200) expectClientError(answer, 400, /./);
      else {
        const response = expectReview(answer, uid);
        expect(response.warnings?.join("\n")).toContain("SECRET_DB_PASSWORD");
        expect(response.warnings?.join("\n")).toContain("invalid reference");
      }
      await expectStillNormal();
    });

    it("outside any string: HTTP 400", async () => {
      const body = Buffer.concat([Buffer.from('{"apiVersion":"admission.k8s.io/v1",'), Buffer.from([0xff, 0xfe]), Buffer.from(":1}")]);
      expectClientError(await post(body), 400, "request body is not valid JSON");
      await expectStillNormal();
    });
  });

  describe("__proto__ and constructor keys do not pollute the server's prototypes", () => {
    // If any of these reached Object.prototype inside the server, a later normal pod creation would
    // look like a sub-resource (`subResource`), a dry run or an excluded namespace, and stop being
    // mutated — expectStillNormal() would see it. The probe string must never come back either.
    const probe = `polluted-${randomUUID()}`;
    const pollution = { subResource: "status", dryRun: true, namespace: "kube-system", polluted: probe, [Annotations.status]: probe };
    const protoJson = (json: string) => json.replaceAll('"__PROTO__"', '"__proto__"');
    const places: [string, (payload: unknown) => string][] = [
      ["at the top level", (payload) => protoJson(JSON.stringify({ ...JSON.parse(podCreateReview(normalPod).body), __PROTO__: payload }))],
      [
        "in the request",
        (payload) => {
          const review = JSON.parse(podCreateReview(normalPod).body);
          review.request.__PROTO__ = payload;
          return protoJson(JSON.stringify(review));
        },
      ],
      ["in the pod", (payload) => protoJson(podCreateReview({ ...normalPod, __PROTO__: payload }).body)],
      [
        "in metadata",
        (payload) => protoJson(podCreateReview({ ...normalPod, metadata: { ...normalPod.metadata, __PROTO__: payload } }).body),
      ],
      [
        "in the annotations",
        (payload) =>
          protoJson(
            podCreateReview({
              ...normalPod,
              metadata: { ...normalPod.metadata, annotations: { [Annotations.inject]: "true", __PROTO__: payload } },
            }).body,
          ),
      ],
      ["in a container", (payload) => protoJson(podCreateReview(podWith({ container: { __PROTO__: payload } })).body)],
      [
        "as an env entry",
        (payload) => protoJson(podCreateReview(podWith({ env: [{ name: "SECRET_X", value: "a/b", __PROTO__: payload }] })).body),
      ],
      ["in the spec", (payload) => protoJson(podCreateReview({ ...normalPod, spec: { ...normalPod.spec, __PROTO__: payload } }).body)],
    ];
    const payloads: [string, unknown][] = [
      ["__proto__", pollution],
      ["constructor.prototype", undefined],
    ];

    it.each(places.flatMap(([where, build]) => payloads.map(([key, payload]) => [`${key} ${where}`, build, key, payload] as const)))(
      "%s",
      async (_name, build, key, payload) => {
        const body =
          key === "__proto__"
            ? build(payload)
            : build({}).replace(
                '"__proto__":{}',
                `"constructor":{"prototype":${JSON.stringify(pollution)}},"prototype":${JSON.stringify(pollution)}`,
              );
        expect(body).toContain(key === "__proto__" ? '"__proto__":' : '"constructor":{"prototype":');
        const answer = await post(body);
        if (answer.status === 200) {
          const response = expectReview(answer, JSON.parse(body.replaceAll('"__proto__"', '"p"')).request.uid);
          expect(response.allowed).toBe(true);
        } else expectClientError(answer, 400, /./);
        expect(answer.text).not.toContain(probe);
        await expectStillNormal();
      },
    );

    it("leaves no trace of the probe in any log line", () => {
      expect(webhook.logs().filter((line) => line.includes(probe))).toEqual([]);
      expect(webhook.logs().filter((line) => line.includes('"dryRun":true'))).toEqual([]);
    });
  });

  describe("hostile annotation values", () => {
    /** About 200 KiB of `unit`, repeated. */
    const huge = (unit: string) => unit.repeat(Math.ceil((200 * 1024) / unit.length));
    it.each([
      ["a 200 KiB container list", Annotations.containers, huge("a,")],
      ["a 200 KiB list of distinct container names", Annotations.containers, Array.from({ length: 20_000 }, (_, i) => `c${i}`).join(",")],
      ["a 200 KiB entrypoint", `${Annotations.entrypointPrefix}app`, JSON.stringify([huge("e")])],
      ["a 200 KiB vault role", Annotations.vaultRole, huge("r")],
      ["a 200 KiB passthrough list", Annotations.passthrough, huge("SECRET_A,")],
      ["a 200 KiB rotation interval", Annotations.rotationInterval, huge("1")],
      ["a 200 KiB vault address", Annotations.vaultAddr, `https://${huge("v")}`],
      ["a 200 KiB inject value", Annotations.inject, `true${huge(" ")}`],
      ["an entrypoint that is not JSON", `${Annotations.entrypointPrefix}app`, "/bin/app --flag"],
      ["an entrypoint that is an object", `${Annotations.entrypointPrefix}app`, '{"cmd":"/bin/app"}'],
      ["an entrypoint of numbers", `${Annotations.entrypointPrefix}app`, "[1,2]"],
      ["an entrypoint nested 10k deep", `${Annotations.entrypointPrefix}app`, `${"[".repeat(10_000)}${"]".repeat(10_000)}`],
      ["a role with a newline and an escape", Annotations.vaultRole, "app\n\u001b[31mFAKE WARNING"],
      ["a KV mount walking up", Annotations.vaultKvMount, "secret/../../sys"],
      ["an auth path walking up", Annotations.vaultAuthPath, "../../sys/raw"],
      ["a namespace with a NUL", Annotations.vaultNamespace, "team\u0000root"],
      ["a backend that does not exist", Annotations.backend, "aws"],
      ["a rotation mode that does not exist", Annotations.rotation, "sometimes"],
      ["a signal that does not exist", Annotations.rotationSignal, "SIGFOO; rm -rf /"],
      ["a vault address outside the allowlist", Annotations.vaultAddr, "https://attacker.example"],
      ["ignore-missing with a right-to-left override", Annotations.ignoreMissing, "true\u202e"],
      ["a container list of control characters", Annotations.containers, "\u0007,\u001b]0;title\u0007,app"],
      ["a passthrough of bad names", Annotations.passthrough, "SECRET_A;SECRET_B,$(rm)"],
    ])("%s: a denial or a warning, short and escaped", async (_name, key, value) => {
      const { uid, body } = podCreateReview(podWith({ annotations: { [key]: value } }), "team-a");
      const answer = await post(body);
      const response = expectReview(answer, uid);
      if (!response.allowed) {
        expect(response.status.code).toBe(400);
        expect(response.status.message).toMatch(/^kustodia: /);
        expect(response.status.message).not.toMatch(CONTROL);
        expect(response.status.message.length).toBeLessThanOrEqual(1024);
      }
      await expectStillNormal();
    });
  });

  describe("references with path traversal or control characters: a warning naming the var, escaped", () => {
    it.each([
      ["walking up", "../../etc/passwd#x"],
      ["walking up in the middle", "myapp/../../sys/raw#x"],
      ["an absolute path", "/etc/shadow#root"],
      ["a dot segment", "./myapp/db#password"],
      ["an empty segment", "myapp//db#password"],
      ["walking up with an explicit backend", "vault:../sys#x"],
      ["walking up in Custodia", "custodia:../../secrets/other"],
      ["URL-encoded walking up", "myapp/%2e%2e/db#password"],
      ["a backslash", "myapp\\..\\db#password"],
      ["a NUL", "myapp/db\u0000#password"],
      ["a newline", "myapp/db\n#password"],
      ["a terminal escape in the field", "myapp/db#pass\u001b[2Jword"],
      ["a query string", "myapp/db?list=true#password"],
      ["a 100 KiB reference", `myapp/${"d".repeat(100 * 1024)}#password`],
      ["whitespace around", " myapp/db#password "],
    ])("%s", async (_name, reference) => {
      const { uid, body } = podCreateReview(podWith({ env: [{ name: "SECRET_DB_PASSWORD", value: reference }] }), "team-a");
      const response = expectReview(await post(body), uid);
      expect(response.allowed).toBe(true);
      const warnings = (response.warnings ?? []).join("\n");
      expect(warnings).toContain('container "app" env SECRET_DB_PASSWORD: invalid reference');
      expect(warnings).toContain("the container will fail to start");
      await expectStillNormal();
    });

    it.each([
      ["a newline and an escape in the var name", "SECRET_A\n\u001b[31mB"],
      ["a 100 KiB var name with a dash", `SECRET_${"N".repeat(100 * 1024)}-X`],
      ["a right-to-left override in the var name", "SECRET_\u202eDROWSSAP"],
    ])("%s: flagged, and the warning stays short and escaped", async (_name, name) => {
      const { uid, body } = podCreateReview(podWith({ env: [{ name, value: "myapp/db#password" }] }), "team-a");
      const response = expectReview(await post(body), uid);
      expect((response.warnings ?? []).join("\n")).toContain("is not a valid environment variable name");
      await expectStillNormal();
    });
  });

  describe("other routes and methods", () => {
    it.each([
      ["GET /mutate", "GET", "/mutate"],
      ["PUT /mutate", "PUT", "/mutate"],
      ["a traversal path", "POST", "/../../etc/passwd"],
      ["an encoded traversal path", "POST", "/mutate/%2e%2e/%2e%2e/etc/passwd"],
      ["a 16 KiB path", "GET", `/${"p".repeat(16 * 1024)}`],
    ])("%s: 4xx", async (_name, method, path) => {
      const answer = await rawRequest(webhook, method, path);
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
      await expectStillNormal();
    });
  });

  it("logged every refused request as a warning, and no error or stack trace", () => {
    const lines = webhook.logs().map((line) => JSON.parse(line) as { level: string; msg: string });
    expect(lines.filter((line) => line.level === "error" || line.level === "fatal")).toEqual([]);
    expect(lines.filter((line) => line.msg === "bad request" || line.msg === "malformed AdmissionReview").length).toBeGreaterThan(30);
    expect(webhook.logs().join("\n")).not.toMatch(/\n\s+at /);
  });
});

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
}

/** A request with any method and path, written as is (no URL normalisation by the client). */
function rawRequest(webhook: RunningWebhook, method: string, path: string): Promise<{ status: number; text: string }> {
  const url = new URL(webhook.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        ca: readFileSync(webhook.caFile),
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(method === "GET" ? undefined : "{}");
  });
}

/** Streams `size` bytes of a JSON body with chunked transfer encoding; resolves with the answer (the server may stop reading early). */
function postChunked(webhook: RunningWebhook, size: number): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${webhook.url}/mutate`,
      { method: "POST", ca: readFileSync(webhook.caFile), headers: { "content-type": "application/json", "transfer-encoding": "chunked" } },
      (res) => readAnswer(res).then(resolve, reject),
    );
    // The server may answer and close before the whole body is sent: that is the point.
    req.on("error", (error: NodeJS.ErrnoException) => (error.code === "EPIPE" || error.code === "ECONNRESET" ? undefined : reject(error)));
    const chunk = Buffer.alloc(64 * 1024, "x");
    req.write('{"pad":"');
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end('"}');
    };
    pump();
  });
}
