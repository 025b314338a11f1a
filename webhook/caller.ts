// Who called /mutate: the kube-apiserver proves itself with a client certificate (mTLS; its
// AdmissionConfiguration's kubeConfigFile for webhooks). Pull secrets are used for it alone.
import type { TLSSocket } from "node:tls";

export interface ClientAuth {
  /** CN or DNS SAN values accepted; empty: any certificate the configured CA signed. */
  allowedNames: readonly string[];
}

/** The names a client certificate goes by: its CN and DNS subject alternative names. */
export function certificateNames(peer: { subject?: { CN?: string | string[] }; subjectaltname?: string }): string[] {
  const commonNames = peer.subject?.CN === undefined ? [] : [peer.subject.CN].flat();
  const dnsNames = (peer.subjectaltname ?? "")
    .split(", ")
    .filter((name) => name.startsWith("DNS:"))
    .map((name) => name.slice(4));
  return [...commonNames, ...dnsNames];
}

/** Whether the connection's client certificate was verified against the CA and carries an allowed name. */
export function isVerifiedCaller(socket: TLSSocket, clientAuth: ClientAuth | undefined): boolean {
  if (!clientAuth || !socket.authorized) return false;
  if (clientAuth.allowedNames.length === 0) return true;
  const names = certificateNames(socket.getPeerCertificate());
  return names.some((name) => clientAuth.allowedNames.includes(name));
}
