// The delaying TCP proxy of test/infra/tcp-proxy.ts in a process of its own, so that it keeps
// forwarding while the benchmark blocks on the process it times.
// Usage: node proxy-process.ts <targetHost> <targetPort> <delayMs>; prints {"port":N} once it listens,
// and exits when its stdin closes.
import { startTcpProxy } from "../../test/infra/tcp-proxy.ts";

const [targetHost = "127.0.0.1", targetPort = "0", delayMs = "0"] = process.argv.slice(2);
const proxy = await startTcpProxy({ targetHost, targetPort: Number(targetPort), delayMs: Number(delayMs) });
process.stdout.write(`${JSON.stringify({ port: proxy.port })}\n`);
process.stdin.resume();
process.stdin.on("end", () => {
  process.stderr.write(`${JSON.stringify(proxy.stats())}\n`);
  void proxy.close().then(() => process.exit(0));
});
