// Where the registry client may connect: public unicast addresses, and the non-public networks the
// operator listed (KUSTODIA_REGISTRY_ALLOWED_NETWORKS). A pod names its image's registry, so without
// this rule any tenant could make the webhook reach the cloud metadata service, the apiserver or a
// pod's port. The rule applies to the address actually connected to: names are checked on their DNS
// answer (at connect time, so a rebinding name gains nothing), IP literals as written.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

/** Networks refused unless listed: not reachable as a public registry, or reaching the node itself. */
const NON_PUBLIC: [string, number, "ipv4" | "ipv6", string][] = [
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["169.254.0.0", 16, "ipv4", "link-local"],
  ["10.0.0.0", 8, "ipv4", "private"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "shared (carrier-grade NAT)"],
  ["192.0.0.0", 24, "ipv4", "IETF protocol assignments"],
  ["198.18.0.0", 15, "ipv4", "benchmarking"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["240.0.0.0", 4, "ipv4", "reserved"],
  ["::", 128, "ipv6", "unspecified"],
  ["::1", 128, "ipv6", "loopback"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["fec0::", 10, "ipv6", "site-local"],
  ["fc00::", 7, "ipv6", "private (unique local)"],
  ["ff00::", 8, "ipv6", "multicast"],
  ["64:ff9b::", 96, "ipv6", "NAT64"],
];

export class DestinationRefusedError extends Error {
  override name = "DestinationRefusedError";
  readonly code = "EDESTINATIONREFUSED";
}

export interface DestinationPolicy {
  /** Why `address` (an IP) may not be connected to, or undefined when it may. */
  refusal(address: string): string | undefined;
  /** A `lookup` for sockets: resolves as usual and keeps only the addresses the policy allows. */
  lookup: LookupFunction;
  /** Throws DestinationRefusedError when the URL's host is an IP literal the policy refuses (sockets skip `lookup` for those). */
  checkLiteral(url: URL): void;
}

export type ParsedNetwork = { ok: true; network: [string, number, "ipv4" | "ipv6"] } | { ok: false; error: string };

/** `10.0.0.0/8`, `127.0.0.1` (a single address), `fd00::/8`. */
export function parseNetwork(value: string): ParsedNetwork {
  const [address = "", prefixText, extra] = value.trim().split("/");
  const family = isIP(address);
  const max = family === 6 ? 128 : 32;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (family === 0 || extra !== undefined || !/^[0-9]*$/.test(prefixText ?? "") || !Number.isInteger(prefix) || prefix > max)
    return { ok: false, error: `${JSON.stringify(value)} is not a network (examples: 10.0.0.0/8, 127.0.0.1/32, fd00::/8)` };
  return { ok: true, network: [address, prefix, family === 6 ? "ipv6" : "ipv4"] };
}

export function createDestinationPolicy(allowedNetworks: readonly string[]): DestinationPolicy {
  const allowed = new BlockList();
  for (const value of allowedNetworks) {
    const parsed = parseNetwork(value);
    if (!parsed.ok) throw new Error(parsed.error);
    allowed.addSubnet(...parsed.network);
  }
  const refused = NON_PUBLIC.map(([network, prefix, type, kind]) => {
    const list = new BlockList();
    list.addSubnet(network, prefix, type);
    return { list, kind };
  });

  const refusal = (address: string): string | undefined => {
    const type = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (allowed.check(address, type)) return undefined;
    const kind = refused.find(({ list }) => list.check(address, type))?.kind;
    return kind ? `${address} is a ${kind} address` : undefined;
  };

  const lookup = ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error);
      const usable = addresses.filter((entry) => refusal(entry.address) === undefined);
      const first = usable[0];
      if (!first) {
        const why = addresses.map((entry) => refusal(entry.address)).join(", ");
        return callback(new DestinationRefusedError(`${hostname} resolves only to refused addresses (${why})`));
      }
      if (options.all) return callback(null, usable);
      return callback(null, first.address, first.family);
    });
  }) as unknown as LookupFunction;

  return {
    refusal,
    lookup,
    checkLiteral(url) {
      const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
      if (isIP(host) === 0) return;
      const why = refusal(host);
      if (why) throw new DestinationRefusedError(why);
    },
  };
}

/** The fix, for logs: what the operator does when a trusted registry is on a refused network. */
export const ALLOW_NETWORK_HINT =
  "list the network in KUSTODIA_REGISTRY_ALLOWED_NETWORKS (registry.allowedNetworks) if a trusted registry lives there";
