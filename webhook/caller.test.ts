import { describe, expect, it } from "vitest";
import { certificateNames } from "./caller.ts";

describe("certificateNames", () => {
  it("gives the CN and the DNS subject alternative names, not IP or URI ones", () => {
    expect(
      certificateNames({
        subject: { CN: "kube-apiserver-webhook-client" },
        subjectaltname: "DNS:apiserver.example, IP Address:10.0.0.1, URI:spiffe://x/y, DNS:kube-apiserver",
      }),
    ).toEqual(["kube-apiserver-webhook-client", "apiserver.example", "kube-apiserver"]);
  });

  it("gives nothing for a certificate without names", () => {
    expect(certificateNames({})).toEqual([]);
  });
});
