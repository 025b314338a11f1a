import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MANIFEST_FILE, renderManifests } from "../../scripts/render-manifests.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { parseObjects } from "./chart.ts";

describe.skipIf(skipWithout("helm"))("manifests/kustodia.yaml", () => {
  it("is in sync with charts/kustodia (else run `npm run manifests`)", () => {
    const current = readFileSync(MANIFEST_FILE, "utf8");
    const wanted = renderManifests(service("helm").binary);
    expect(current === wanted, "manifests/kustodia.yaml is out of sync with charts/kustodia: run `npm run manifests`").toBe(true);
  });

  it("creates its namespace first, restricted, and holds no private key", () => {
    const objects = parseObjects(readFileSync(MANIFEST_FILE, "utf8"));
    expect(objects[0]).toMatchObject({
      kind: "Namespace",
      metadata: { name: "kustodia", labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
    });
    for (const object of objects.slice(1)) if (object.metadata.namespace !== undefined) expect(object.metadata.namespace).toBe("kustodia");
    expect(objects.some((object) => object.kind === "Secret")).toBe(false);
    expect(readFileSync(MANIFEST_FILE, "utf8")).not.toContain("PRIVATE KEY");
    const configuration = objects.find((object) => object.kind === "MutatingWebhookConfiguration");
    expect(configuration?.metadata.annotations?.["cert-manager.io/inject-ca-from"]).toBe("kustodia/kustodia");
  });
});
