// The chart's ValidatingAdmissionPolicy, live in the real kube-apiserver, judging pods on its own
// (no MutatingWebhookConfiguration here): the webhook's real mutation (webhook/mutate.ts, with the
// settings the chart's Deployment gives it) must pass, and every way an opted-in pod can reach the
// API without the shim must be refused. Pods are created with dry-run: admission runs in full,
// nothing is stored.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Annotations, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from "../../common/contract.ts";
import { type MutationSettings, mutatePod } from "../../webhook/mutate.ts";
import type { JsonObject } from "../../webhook/pod.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { kubeRequest } from "../infra/kube-api.ts";
import {
  createObject,
  ensureObject,
  type KubeObject,
  namespaceObject,
  podObject,
  renderChart,
  statusMessage,
  webhookSettings,
} from "./chart.ts";

type Delivery = "copy" | "image-volume";

const suffix = randomBytes(3).toString("hex");
const namespaceFor = (delivery: Delivery) => `vap-${delivery}-${suffix}`;
const unlabeledNamespace = `vap-off-${suffix}`;
const settingsFor = new Map<Delivery, MutationSettings>();
const policies: KubeObject[] = [];

function pod(name: string, annotations: Record<string, string>, spec: Record<string, unknown> = {}): KubeObject {
  const app = { command: ["/app/server"], env: [{ name: "SECRET_DB_PASSWORD", value: "myapp/db#password" }] };
  return podObject(name, annotations, app, { automountServiceAccountToken: false, ...spec });
}

const optedIn = { [Annotations.inject]: "true" };

/** What the webhook itself makes of `original` with the chart's settings for `delivery`. */
function mutated(original: KubeObject, delivery: Delivery = "copy"): KubeObject {
  const decision = mutatePod(original as unknown as JsonObject, settingsFor.get(delivery) as MutationSettings, new Map());
  if (decision.kind !== "mutate") throw new Error(`the webhook would not mutate this pod: ${JSON.stringify(decision)}`);
  return decision.pod as unknown as KubeObject;
}

function edit(object: KubeObject, change: (copy: KubeObject) => void): KubeObject {
  const copy = structuredClone(object);
  change(copy);
  return copy;
}

async function admit(object: KubeObject, namespace: string): Promise<{ allowed: boolean; message: string }> {
  const withNamespace = { ...object, metadata: { ...object.metadata, namespace } };
  const { status, body } = await createObject(service("kube"), withNamespace, { dryRun: true });
  return { allowed: status === 201, message: status === 201 ? "" : statusMessage(body) };
}

const NOT_PROCESSED = "was not processed by the kustodia webhook";
const NOT_SHIMMED = "do not run /kustodia/kustodia-shim from the kustodia volume";
const STRAY_MOUNT = "mount something else at or under /kustodia";

describe.skipIf(skipWithout("kube", "helm"))("the ValidatingAdmissionPolicy backstop in the kube-apiserver", () => {
  beforeAll(async () => {
    const kube = service("kube");
    for (const delivery of ["copy", "image-volume"] as const) {
      const namespace = namespaceFor(delivery);
      const objects = await renderChart(service("helm").binary, {
        release: `vap-${delivery}-${suffix}`,
        namespace: `vap-system-${suffix}`,
        kubeVersion: kube.version,
        values: {
          shim: { delivery },
          // Only this test's namespace: the apiserver is shared with other tests.
          webhook: { extraNamespaceSelectorExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [namespace] }] },
        },
      });
      settingsFor.set(delivery, webhookSettings(objects));
      for (const object of objects.filter((item) => item.kind.startsWith("ValidatingAdmissionPolicy"))) {
        await ensureObject(kube, object);
        policies.push(object);
      }
      await ensureObject(kube, namespaceObject(namespace, { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE }));
      await ensureObject(kube, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "app", namespace } });
      // Policies reach the admission chain through an informer: wait until this one refuses.
      const deadline = Date.now() + 30_000;
      while (!(await admit(pod("probe", optedIn), namespace)).message.includes(NOT_PROCESSED)) {
        if (Date.now() > deadline) throw new Error(`the policy for ${namespace} did not take effect within 30 s`);
        await sleep(250);
      }
    }
    await ensureObject(kube, namespaceObject(unlabeledNamespace));
    await ensureObject(kube, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "app", namespace: unlabeledNamespace } });
  });

  afterAll(async () => {
    const kube = service("kube");
    for (const policy of policies.reverse()) {
      const plural = policy.kind === "ValidatingAdmissionPolicy" ? "validatingadmissionpolicies" : "validatingadmissionpolicybindings";
      await kubeRequest(kube, "DELETE", `/apis/admissionregistration.k8s.io/v1/${plural}/${policy.metadata.name}`);
    }
  });

  const rows: { name: string; make: () => KubeObject; allowed: boolean; message?: string }[] = [
    { name: "the webhook's own mutation", make: () => mutated(pod("mutated", optedIn)), allowed: true },
    {
      name: "the webhook's rotation-mode mutation (tini in front of the shim)",
      make: () => mutated(pod("rotating", { ...optedIn, [Annotations.rotation]: "restart" })),
      allowed: true,
    },
    {
      name: "tini in front of something else than the shim",
      make: () =>
        edit(mutated(pod("tini-only", { ...optedIn, [Annotations.rotation]: "restart" })), (copy) => {
          copy.spec.containers[0].command = ["/kustodia/tini", "--", "/app/server"];
        }),
      allowed: false,
      message: `container(s) app ${NOT_SHIMMED}`,
    },
    { name: "an opted-in pod the webhook never saw", make: () => pod("unseen", optedIn), allowed: false, message: NOT_PROCESSED },
    {
      name: "an opt-in written in capitals the webhook never saw",
      make: () => pod("capitals", { [Annotations.inject]: "TRUE" }),
      allowed: false,
      message: NOT_PROCESSED,
    },
    { name: "a pod that does not opt in", make: () => pod("plain", {}), allowed: true },
    { name: 'a pod with inject: "false"', make: () => pod("opted-out", { [Annotations.inject]: "false" }), allowed: true },
    {
      name: "a hand-written injected status on an untouched pod",
      make: () => pod("forged", { ...optedIn, [Annotations.status]: "injected 0.1.0" }),
      allowed: false,
      message: `container(s) app ${NOT_SHIMMED}`,
    },
    {
      name: "the shim command without the /kustodia mount",
      make: () =>
        edit(mutated(pod("no-mount", optedIn)), (copy) => {
          copy.spec.containers[0].volumeMounts = [];
        }),
      allowed: false,
      message: NOT_SHIMMED,
    },
    {
      name: "a /kustodia emptyDir that no installer fills",
      make: () =>
        edit(mutated(pod("no-installer", optedIn)), (copy) => {
          copy.spec.initContainers = [];
        }),
      allowed: false,
      message: NOT_SHIMMED,
    },
    {
      name: "an initContainer with references left without the shim",
      make: () =>
        edit(
          mutated(
            pod("init-left-out", optedIn, {
              initContainers: [
                {
                  name: "migrate",
                  image: "registry.example/app:1",
                  command: ["/app/migrate"],
                  env: [{ name: "SECRET_DSN", value: "myapp/db#dsn" }],
                },
              ],
            }),
          ),
          (copy) => {
            const migrate = copy.spec.initContainers.find((container: { name: string }) => container.name === "migrate");
            migrate.command = ["/app/migrate"];
          },
        ),
      allowed: false,
      message: `container(s) migrate ${NOT_SHIMMED}`,
    },
    {
      name: "the webhook's skipped verdict on a pod without references",
      make: () =>
        mutated(
          pod("nothing-to-do", optedIn, {
            containers: [{ name: "app", image: "registry.example/app:1", env: [{ name: "PORT", value: "80" }] }],
          }),
        ),
      allowed: true,
    },
    {
      name: "a skipped status on a pod that declares references",
      make: () => pod("forged-skip", { ...optedIn, [Annotations.status]: "skipped 0.1.0: no container to inject" }),
      allowed: false,
      message: "container(s) app declare SECRET_ references",
    },
    {
      name: "the webhook's skipped verdict when every SECRET_ var is passthrough",
      make: () =>
        mutated(
          pod(
            "passthrough",
            { ...optedIn, [Annotations.passthrough]: "SECRET_KEY" },
            {
              containers: [{ name: "app", image: "registry.example/app:1", env: [{ name: "SECRET_KEY", value: "django-key" }] }],
            },
          ),
        ),
      allowed: true,
    },
    {
      name: "a container named in kustodia.io/containers left without the shim",
      make: () =>
        edit(
          mutated(
            pod(
              "named",
              { ...optedIn, [Annotations.containers]: "app, worker" },
              {
                containers: [
                  { name: "app", image: "registry.example/app:1", command: ["/app/server"] },
                  { name: "worker", image: "registry.example/app:1", command: ["/app/worker"] },
                ],
              },
            ),
          ),
          (copy) => {
            copy.spec.containers[1].command = ["/app/worker"];
          },
        ),
      allowed: false,
      message: `container(s) worker ${NOT_SHIMMED}`,
    },
    {
      name: "a status the webhook never writes",
      make: () => pod("odd-status", { ...optedIn, [Annotations.status]: "done" }),
      allowed: false,
      message: 'kustodia.io/status is "done"',
    },
    // #13 item 6: the shim must be the configured shim image, and nothing may cover it.
    {
      name: "a hand-written injected status with a foreign install image (#13 item 6)",
      make: () =>
        // Everything as the webhook writes it (status included), but the installer's image.
        edit(mutated(pod("foreign-installer", optedIn)), (copy) => {
          copy.spec.initContainers[0].image = "attacker.example/not-the-shim:1";
        }),
      allowed: false,
      message: `container(s) app ${NOT_SHIMMED}`,
    },
    {
      name: "a ConfigMap file over /kustodia/kustodia-shim (#13 item 6)",
      make: () =>
        edit(mutated(pod("configmap-over-shim", optedIn)), (copy) => {
          copy.spec.volumes.push({ name: "fake-shim", configMap: { name: "fake-shim" } });
          copy.spec.containers[0].volumeMounts.push({ name: "fake-shim", mountPath: "/kustodia/kustodia-shim", subPath: "shim" });
        }),
      allowed: false,
      message: `container(s) app ${STRAY_MOUNT}`,
    },
    ...["//kustodia/kustodia-shim", "/kustodia/./lib/", "/opt/../kustodia"].map((mountPath) => ({
      name: `a volume mounted at ${JSON.stringify(mountPath)}, under /kustodia once normalised (#13 item 6)`,
      make: () =>
        edit(mutated(pod("odd-path", optedIn)), (copy) => {
          copy.spec.volumes.push({ name: "fake-shim", emptyDir: {} });
          copy.spec.containers[0].volumeMounts.push({ name: "fake-shim", mountPath });
        }),
      allowed: false,
      message: `container(s) app ${STRAY_MOUNT}`,
    })),
    {
      name: "an init container that mounts the shim volume writable elsewhere (#13 item 6)",
      make: () =>
        edit(mutated(pod("overwriter", optedIn)), (copy) => {
          copy.spec.initContainers.push({
            name: "overwrite",
            image: "registry.example/app:1",
            command: ["cp", "/fake", "/mnt/shim/kustodia-shim"],
            volumeMounts: [{ name: "kustodia", mountPath: "/mnt/shim" }],
          });
        }),
      allowed: false,
      message: `container(s) overwrite ${STRAY_MOUNT}`,
    },
    {
      name: "an image-volume mutation where the chart delivers by copy",
      make: () => mutated(pod("image-volume", optedIn), "image-volume"),
      allowed: false,
      message: NOT_SHIMMED,
    },
  ];

  it.each(rows)("copy delivery: $name → allowed: $allowed", async ({ make, allowed, message }) => {
    const answer = await admit(make(), namespaceFor("copy"));
    expect(answer.message).toContain(message ?? "");
    expect(answer.allowed, answer.message).toBe(allowed);
  });

  it("image-volume delivery: admits the webhook's image-volume mutation", async () => {
    const answer = await admit(mutated(pod("image-volume", optedIn), "image-volume"), namespaceFor("image-volume"));
    expect(answer.allowed, answer.message).toBe(true);
  });

  it("image-volume delivery: refuses an image volume of another image than the shim (#13 item 6)", async () => {
    const foreign = edit(mutated(pod("foreign-volume", optedIn), "image-volume"), (copy) => {
      copy.spec.volumes[0].image.reference = "attacker.example/not-the-shim:1";
    });
    const answer = await admit(foreign, namespaceFor("image-volume"));
    expect(answer.message).toContain(`container(s) app ${NOT_SHIMMED}`);
    expect(answer.allowed).toBe(false);
  });

  it("image-volume delivery: still admits the copy mutation of pods made before a switch", async () => {
    const answer = await admit(mutated(pod("copy", optedIn)), namespaceFor("image-volume"));
    expect(answer.allowed, answer.message).toBe(true);
  });

  it("image-volume delivery: refuses an opted-in pod the webhook never saw", async () => {
    const answer = await admit(pod("unseen", optedIn), namespaceFor("image-volume"));
    expect(answer.message).toContain(NOT_PROCESSED);
  });

  it("stays within the apiserver's CEL cost budget for a large pod (40 containers × 60 env vars, 30 passthrough)", async () => {
    const passthrough = Array.from({ length: 30 }, (_, index) => `SECRET_PLAIN_${index}`);
    const containers = Array.from({ length: 40 }, (_, index) => ({
      name: `c${index}`,
      image: "registry.example/app:1",
      command: ["/app/server"],
      env: Array.from({ length: 60 }, (_, envIndex) => ({ name: `SECRET_VAR_${envIndex}`, value: `myapp/c${index}#v${envIndex}` })),
    }));
    const large = pod("large", { ...optedIn, [Annotations.passthrough]: passthrough.join(",") }, { containers });
    const answer = await admit(mutated(large), namespaceFor("copy"));
    expect(answer.allowed, answer.message).toBe(true);
    const forged = edit(mutated(large), (copy) => {
      copy.spec.containers[39].command = ["/app/server"];
    });
    expect((await admit(forged, namespaceFor("copy"))).message).toContain(`container(s) c39 ${NOT_SHIMMED}`);
  });

  it("leaves namespaces without the kustodia.io/injection label alone", async () => {
    const answer = await admit(pod("elsewhere", optedIn), unlabeledNamespace);
    expect(answer.allowed, answer.message).toBe(true);
  });
});
