// Every setting of the shim, defined once: its env var, the pod annotation that sets it, whether the
// cluster admin sets a default for it, how its value is read (what is accepted), its default and its
// doc line. The shim's config reader, the webhook's annotation checks, the webhook's validation of
// the cluster defaults at start, `kustodia check` and docs/configuration.md all come from this table,
// so the webhook admits an annotation value exactly when the shim accepts the env var it becomes.
import { Annotations, DEFAULT_REFERENCE_PREFIX, SHIM_ENV_PREFIX, ShimEnv } from "./contract.ts";
import { parseDuration } from "./duration.ts";
import { BACKENDS, isValidEnvName, splitList } from "./reference.ts";
import { parseSignal } from "./signal.ts";

export const VAULT_AUTH_METHODS = ["kubernetes", "jwt", "approle", "token"] as const;
export type VaultAuthMethod = (typeof VAULT_AUTH_METHODS)[number];
/** The auth methods that log in with the pod's ServiceAccount token. */
export const SA_TOKEN_AUTH_METHODS: readonly VaultAuthMethod[] = ["kubernetes", "jwt"];
export const ROTATION_MODES = ["none", "restart", "signal"] as const;
export type RotationMode = (typeof ROTATION_MODES)[number];
/** The rotation modes in which the shim stays resident as the app's parent. */
export const RESIDENT_ROTATION_MODES: readonly RotationMode[] = ["restart", "signal"];
export const SHIM_LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type ShimLogLevel = (typeof SHIM_LOG_LEVELS)[number];
/** What the shim starts: the container's app, or a wrapped exec probe or lifecycle hook. */
export const SHIM_ROLES = ["app", "probe", "hook"] as const;
export type ShimRole = (typeof SHIM_ROLES)[number];
/** The exec handlers of a container the webhook can run through the shim, named as in the pod spec. */
export const EXEC_HANDLER_KINDS = ["livenessProbe", "readinessProbe", "startupProbe", "postStart", "preStop"] as const;
export type ExecHandlerKind = (typeof EXEC_HANDLER_KINDS)[number];

/** How long before an issued secret expires it is renewed or re-issued: a duration, or a share of its lifetime. */
export type RotationMargin = { ms: number } | { fraction: number };

/** Where a setting is documented in docs/configuration.md. */
export type SettingSection = "backend" | "references" | "rotation" | "handlers";

interface SettingSpec<T, F extends T | undefined> {
  /** The shim's env var. */
  env: string;
  /** The pod annotation the webhook turns into `env`, if any. */
  annotation?: string;
  /**
   * The cluster admin sets a default for every shim: env `KUSTODIA_SHIM_<NAME>` on the webhook, key
   * `shimDefaults.<key>` of its config file, chart value `shim.defaults.<key>`.
   */
  clusterDefault?: true;
  /** The value as the shim uses it; undefined when the value is not accepted. */
  parse(raw: string): T | undefined;
  /** What is accepted, for error messages and the docs. */
  accepted: string;
  /** The value when the var is unset or empty (undefined: none). */
  fallback: F;
  /** The default as the docs say it. */
  defaultText: string;
  doc: string;
  section: SettingSection;
}

export type ShimSetting<T> = SettingSpec<T, T | undefined>;

function setting<T, const F extends T | undefined>(spec: SettingSpec<T, F>): SettingSpec<T, F> {
  return spec;
}

function oneOf<T extends string>(allowed: readonly T[]): Pick<ShimSetting<T>, "parse" | "accepted"> {
  return {
    parse: (raw) => ((allowed as readonly string[]).includes(raw) ? (raw as T) : undefined),
    accepted: allowed.map((item) => `"${item}"`).join(", "),
  };
}

function duration(minimumMs: number): Pick<ShimSetting<number>, "parse" | "accepted"> {
  return {
    parse: (raw) => {
      const ms = parseDuration(raw);
      return ms !== undefined && ms >= minimumMs ? ms : undefined;
    },
    accepted: `a duration of at least ${minimumMs} ms, like ${minimumMs <= 500 ? "500ms, " : ""}30s, 5m or 1h30m`,
  };
}

function address(schemes: readonly string[]): Pick<ShimSetting<string>, "parse" | "accepted"> {
  return {
    parse: (raw) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return undefined;
      }
      const plain = schemes.includes(url.protocol) && url.search === "" && url.hash === "" && url.username === "" && url.password === "";
      return plain ? raw.replace(/\/+$/, "") : undefined;
    },
    accepted: `a URL with scheme ${schemes.map((scheme) => `${scheme}//`).join(" or ")}, no query, fragment or user`,
  };
}

const MOUNT_PATH = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** A Vault path of plain segments (no `..`); leading and trailing slashes are dropped. */
function mountPath(accepted: string, dropPrefix?: string): Pick<ShimSetting<string>, "parse" | "accepted"> {
  return {
    parse: (raw) => {
      let path = raw.replace(/^\/+|\/+$/g, "");
      if (dropPrefix !== undefined && path.startsWith(dropPrefix)) path = path.slice(dropPrefix.length);
      return MOUNT_PATH.test(path) ? path : undefined;
    },
    accepted,
  };
}

const FILE: Pick<ShimSetting<string>, "parse" | "accepted"> = { parse: (raw) => raw, accepted: "a file path" };
const BOOLEAN: Pick<ShimSetting<boolean>, "parse" | "accepted"> = {
  parse: (raw) => (raw === "true" ? true : raw === "false" ? false : undefined),
  accepted: '"true" or "false"',
};

/** Vault's own rule for role names allows `@` (GenericNameRegex); `/` is kept for roles named with paths. */
const ROLE = /^[A-Za-z0-9][A-Za-z0-9._@/-]{0,254}$/;
const MARGIN_PERCENT = /^([1-9][0-9]?(?:\.[0-9]+)?)%$/;
/** A third of the lifetime left, as cert-manager's default renewBefore and Vault Agent's renewals. */
const DEFAULT_ROTATION_MARGIN: RotationMargin = { fraction: 1 / 3 };
export const DEFAULT_SA_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** The shim's settings, keyed like `ShimEnv`. */
export const ShimSettings = {
  backend: setting({
    env: ShimEnv.backend,
    annotation: Annotations.backend,
    clusterDefault: true,
    ...oneOf(BACKENDS),
    fallback: "vault",
    defaultText: "`vault`",
    doc: "backend of references without a `vault:` / `custodia:` prefix",
    section: "backend",
  }),
  vaultAddr: setting({
    env: ShimEnv.vaultAddr,
    annotation: Annotations.vaultAddr,
    clusterDefault: true,
    ...address(["http:", "https:"]),
    fallback: undefined,
    defaultText: "— (required for Vault references)",
    doc: "Vault/OpenBao address, `https://vault.example:8200` (`http://` for dev servers). Always the cluster's; the annotation is honoured only when the address starts with an entry of the cluster's `shim.vaultAddrAllowlist` (empty by default: the pod is denied)",
    section: "backend",
  }),
  vaultCaCert: setting({
    env: ShimEnv.vaultCaCert,
    clusterDefault: true,
    ...FILE,
    fallback: undefined,
    defaultText: "the system CAs",
    doc: "CA bundle (PEM file inside the container) for Vault's TLS certificate",
    section: "backend",
  }),
  vaultAuthMethod: setting({
    env: ShimEnv.vaultAuthMethod,
    clusterDefault: true,
    ...oneOf(VAULT_AUTH_METHODS),
    fallback: "kubernetes",
    defaultText: "`kubernetes`",
    doc: "how the shim logs in to Vault ([backends.md](backends.md))",
    section: "backend",
  }),
  vaultAuthPath: setting({
    env: ShimEnv.vaultAuthPath,
    annotation: Annotations.vaultAuthPath,
    clusterDefault: true,
    ...mountPath("a mount path like kubernetes or auth/kubernetes", "auth/"),
    fallback: undefined,
    defaultText: "the method's name",
    doc: "where the auth method is mounted: `kubernetes` and `auth/kubernetes` both work",
    section: "backend",
  }),
  vaultRole: setting({
    env: ShimEnv.vaultRole,
    annotation: Annotations.vaultRole,
    clusterDefault: true,
    parse: (raw) => (ROLE.test(raw) ? raw : undefined),
    accepted: "a role name: letters, digits, '.', '_', '-', '@', '/' (at most 255)",
    fallback: undefined,
    defaultText: "— (required by `kubernetes` and `jwt`)",
    doc: "the Vault/OpenBao role the shim logs in with",
    section: "backend",
  }),
  vaultKvMount: setting({
    env: ShimEnv.vaultKvMount,
    annotation: Annotations.vaultKvMount,
    clusterDefault: true,
    ...mountPath("a mount path like secret or team/kv"),
    fallback: "secret",
    defaultText: "`secret`",
    doc: "KV mount of static references; KV v1 or v2 is detected from the mount",
    section: "backend",
  }),
  vaultNamespace: setting({
    env: ShimEnv.vaultNamespace,
    annotation: Annotations.vaultNamespace,
    ...mountPath("a namespace path like team-a or parent/child (a trailing / is dropped)"),
    fallback: undefined,
    defaultText: "—",
    doc: "Vault Enterprise / OpenBao namespace (sent as `X-Vault-Namespace`)",
    section: "backend",
  }),
  saTokenFile: setting({
    env: ShimEnv.saTokenFile,
    ...FILE,
    fallback: DEFAULT_SA_TOKEN_FILE,
    defaultText: `\`${DEFAULT_SA_TOKEN_FILE}\``,
    doc: "the ServiceAccount token for `kubernetes` and `jwt` logins. The webhook sets it to `/var/run/secrets/kustodia.io/serviceaccount/token` when it mounts a projected token for a pod that automounts none.",
    section: "backend",
  }),
  vaultTokenFile: setting({
    env: ShimEnv.vaultTokenFile,
    ...FILE,
    fallback: undefined,
    defaultText: "— (required by `token`)",
    doc: "file holding a Vault token. Tokens are never read from the environment (`VAULT_TOKEN` is ignored).",
    section: "backend",
  }),
  vaultRoleIdFile: setting({
    env: ShimEnv.vaultRoleIdFile,
    ...FILE,
    fallback: undefined,
    defaultText: "— (required by `approle`)",
    doc: "file holding the AppRole `role_id`",
    section: "backend",
  }),
  vaultSecretIdFile: setting({
    env: ShimEnv.vaultSecretIdFile,
    ...FILE,
    fallback: undefined,
    defaultText: "—",
    doc: "file holding the AppRole `secret_id`; leave it out for roles that bind none (`bind_secret_id=false`)",
    section: "backend",
  }),
  custodiaUrl: setting({
    env: ShimEnv.custodiaUrl,
    clusterDefault: true,
    ...address(["http+unix:", "https:"]),
    fallback: undefined,
    defaultText: "— (required for Custodia references)",
    doc: "`http+unix:///var/run/custodia/custodia.sock` or `https://custodia.example`; always the cluster's",
    section: "backend",
  }),
  custodiaCaCert: setting({
    env: ShimEnv.custodiaCaCert,
    ...FILE,
    fallback: undefined,
    defaultText: "the system CAs",
    doc: "CA bundle for an `https://` Custodia",
    section: "backend",
  }),
  custodiaClientCert: setting({
    env: ShimEnv.custodiaClientCert,
    ...FILE,
    fallback: undefined,
    defaultText: "—",
    doc: `client certificate for an \`https://\` Custodia that authenticates clients by TLS; set it and \`${ShimEnv.custodiaClientKey}\` both or neither`,
    section: "backend",
  }),
  custodiaClientKey: setting({
    env: ShimEnv.custodiaClientKey,
    ...FILE,
    fallback: undefined,
    defaultText: "—",
    doc: `the key of \`${ShimEnv.custodiaClientCert}\``,
    section: "backend",
  }),
  prefix: setting({
    env: ShimEnv.prefix,
    parse: (raw) => (isValidEnvName(raw) && !raw.startsWith(SHIM_ENV_PREFIX) ? raw : undefined),
    accepted: `an env var name prefix like SECRET_, not starting with ${SHIM_ENV_PREFIX}`,
    fallback: DEFAULT_REFERENCE_PREFIX,
    defaultText: `\`${DEFAULT_REFERENCE_PREFIX}\``,
    doc: "prefix of reference vars; the webhook writes it only when the cluster changed it (`shim.referencePrefix`)",
    section: "references",
  }),
  passthrough: setting({
    env: ShimEnv.passthrough,
    annotation: Annotations.passthrough,
    parse: (raw): readonly string[] | undefined => {
      const names = splitList(raw);
      return names.every(isValidEnvName) ? Object.freeze(names) : undefined;
    },
    accepted: "a comma-separated list of env var names",
    fallback: Object.freeze([]) as readonly string[],
    defaultText: "—",
    doc: "comma-separated prefixed vars that are plain values, passed on unchanged (Django's `SECRET_KEY`)",
    section: "references",
  }),
  ignoreMissing: setting({
    env: ShimEnv.ignoreMissing,
    annotation: Annotations.ignoreMissing,
    ...BOOLEAN,
    fallback: false,
    defaultText: "`false`",
    doc: "`true`: a secret or field that does not exist leaves its var unset (with a warning in the log) instead of failing the start; denied access and malformed references still fail",
    section: "references",
  }),
  timeout: setting({
    env: ShimEnv.timeout,
    clusterDefault: true,
    ...duration(1),
    fallback: 30_000,
    defaultText: "`30s`",
    doc: "deadline of the whole start (login, every read, the retries of transient errors); past it an unreachable backend is exit 69",
    section: "references",
  }),
  logLevel: setting({
    env: ShimEnv.logLevel,
    clusterDefault: true,
    ...oneOf(SHIM_LOG_LEVELS),
    fallback: "info",
    defaultText: "`info`",
    doc: "the shim logs plain lines on stderr, `kustodia-shim <level>: …`, never a value, and at every start its audit record, one JSON line whatever the level ([audit.md](audit.md))",
    section: "references",
  }),
  rotation: setting({
    env: ShimEnv.rotation,
    annotation: Annotations.rotation,
    ...oneOf(ROTATION_MODES),
    fallback: "none",
    defaultText: "`none`",
    doc: "`none` (exec the app), `restart` or `signal` ([rotation.md](rotation.md))",
    section: "rotation",
  }),
  rotationInterval: setting({
    env: ShimEnv.rotationInterval,
    annotation: Annotations.rotationInterval,
    ...duration(1000),
    fallback: 5 * 60_000,
    defaultText: "`5m`",
    doc: "how often the secrets are re-read in rotation mode",
    section: "rotation",
  }),
  rotationSignal: setting({
    env: ShimEnv.rotationSignal,
    annotation: Annotations.rotationSignal,
    parse: parseSignal,
    accepted: "a signal name like SIGHUP, HUP or SIGUSR1 (not SIGKILL or SIGSTOP)",
    fallback: "SIGHUP",
    defaultText: "`SIGHUP`",
    doc: "the signal `signal` mode sends to the app",
    section: "rotation",
  }),
  rotationMargin: setting({
    env: ShimEnv.rotationMargin,
    parse: (raw): RotationMargin | undefined => {
      const percent = MARGIN_PERCENT.exec(raw);
      if (percent) return { fraction: Number(percent[1]) / 100 };
      const ms = parseDuration(raw);
      return ms !== undefined && ms >= 1000 ? { ms } : undefined;
    },
    accepted: "a share of the lifetime like 33% (1-99%), or a duration of at least 1s like 10m",
    fallback: DEFAULT_ROTATION_MARGIN,
    defaultText: "a third of the lifetime",
    doc: "how long before an issued secret expires the shim renews or re-issues it ([dynamic-secrets.md](dynamic-secrets.md))",
    section: "rotation",
  }),
  role: setting({
    env: ShimEnv.role,
    ...oneOf(SHIM_ROLES),
    fallback: "app",
    defaultText: "`app`",
    doc: `what the shim starts: \`app\`, the container's entrypoint; \`probe\` or \`hook\`, an exec probe or lifecycle hook run through the shim (\`${Annotations.wrapExec}\`). A handler is exec'd whatever the rotation mode, writes no audit record unless \`${ShimEnv.handlerAudit}\` is true, and in a \`probe\` the shim expands \`$(NAME)\` of the vars it resolved, as the kubelet expands a probe's \`$(NAME)\`. The webhook writes it, with the handler's \`${ShimEnv.timeout}\`, as words before \`--\` in the handler's command, never into the container's env`,
    section: "handlers",
  }),
  handlerAudit: setting({
    env: ShimEnv.handlerAudit,
    annotation: Annotations.wrapExecAudit,
    ...BOOLEAN,
    fallback: false,
    defaultText: "`false`",
    doc: "`true`: every run of a wrapped exec handler writes the audit record ([audit.md](audit.md)), as a start does; by default handlers run quietly",
    section: "handlers",
  }),
  podName: setting({
    env: ShimEnv.podName,
    parse: (raw) => raw,
    accepted: "the pod's name",
    fallback: undefined,
    defaultText: "the claims of the ServiceAccount token",
    doc: "the pod's identity, for the `{pod.*}` placeholders of issued references and the audit record; the webhook adds the three from the downward API to containers with issued references ([dynamic-secrets.md](dynamic-secrets.md#the-pods-identity))",
    section: "rotation",
  }),
  podNamespace: setting({
    env: ShimEnv.podNamespace,
    parse: (raw) => raw,
    accepted: "the pod's namespace",
    fallback: undefined,
    defaultText: "the claims of the ServiceAccount token",
    doc: `like \`${ShimEnv.podName}\``,
    section: "rotation",
  }),
  podServiceAccount: setting({
    env: ShimEnv.podServiceAccount,
    parse: (raw) => raw,
    accepted: "the pod's ServiceAccount",
    fallback: undefined,
    defaultText: "the claims of the ServiceAccount token",
    doc: `like \`${ShimEnv.podName}\``,
    section: "rotation",
  }),
};

export type ShimSettingKey = keyof typeof ShimSettings;
/** What the shim holds for `K`: its parsed value, or the fallback when unset. */
export type SettingValue<K extends ShimSettingKey> =
  (typeof ShimSettings)[K] extends SettingSpec<infer T, infer F> ? (undefined extends F ? T | undefined : T) : never;

/** The settings the cluster admin gives every shim a default for. */
export const CLUSTER_DEFAULT_KEYS = (Object.keys(ShimSettings) as ShimSettingKey[]).filter(
  (key) => (ShimSettings[key] as ShimSetting<unknown>).clusterDefault === true,
);
export type ClusterDefaultKey = (typeof CLUSTER_DEFAULT_KEYS)[number];

/** `KUSTODIA_VAULT_ROLE` → `KUSTODIA_SHIM_VAULT_ROLE`: the webhook's env var holding the cluster default. */
export function clusterDefaultEnv(key: ShimSettingKey): string {
  return `${SHIM_ENV_PREFIX}SHIM_${ShimSettings[key].env.slice(SHIM_ENV_PREFIX.length)}`;
}

/** The settings a pod annotation sets, as [key, annotation]. */
export const ANNOTATED_SETTINGS = (Object.keys(ShimSettings) as ShimSettingKey[]).flatMap((key) => {
  const annotation = (ShimSettings[key] as ShimSetting<unknown>).annotation;
  return annotation === undefined ? [] : [[key, annotation] as const];
});

/** `raw` read as `key`'s value; an empty value means unset. */
export function readSetting<K extends ShimSettingKey>(
  key: K,
  raw: string | undefined,
): { ok: true; value: SettingValue<K> } | { ok: false } {
  const spec = ShimSettings[key] as unknown as ShimSetting<SettingValue<K>>;
  if (raw === undefined || raw === "") return { ok: true, value: spec.fallback as SettingValue<K> };
  const value = spec.parse(raw);
  return value === undefined ? { ok: false } : { ok: true, value };
}

/**
 * The share of an exec probe's `timeoutSeconds` a wrapped probe's shim may spend resolving (its
 * `KUSTODIA_TIMEOUT`); the rest is left for the shim's own start and the probe itself.
 */
export const PROBE_DEADLINE_SHARE = 0.5;

/** A pod annotation the webhook reads itself (it becomes no shim env var), defined like the shim's settings. */
export interface PodSetting<T> extends Pick<ShimSetting<T>, "parse" | "accepted" | "defaultText" | "doc"> {
  annotation: string;
  fallback: T;
}

function parseWrapExec(raw: string): readonly ExecHandlerKind[] | undefined {
  if (raw === "true") return EXEC_HANDLER_KINDS;
  if (raw === "false") return Object.freeze([]);
  const kinds = splitList(raw);
  const known = (kind: string): kind is ExecHandlerKind => (EXEC_HANDLER_KINDS as readonly string[]).includes(kind);
  return kinds.length > 0 && kinds.every(known) ? Object.freeze([...new Set(kinds)]) : undefined;
}

/** Pod annotations that tell the webhook what to do, read (and admitted) by the same rules as the shim's settings. */
export const PodSettings = {
  wrapExec: {
    annotation: Annotations.wrapExec,
    parse: parseWrapExec,
    accepted: `"true", "false", or a comma-separated list of ${EXEC_HANDLER_KINDS.join(", ")}`,
    fallback: Object.freeze([]) as readonly ExecHandlerKind[],
    defaultText: "`false`",
    doc: `the exec probes and lifecycle hooks of the injected containers that run through the shim, and so see the secrets (\`true\`: all five kinds). Each run logs in and reads once; a probe's shim gets ${PROBE_DEADLINE_SHARE * 100}% of its \`timeoutSeconds\` as \`${ShimEnv.timeout}\` ([below](#exec-probes-and-lifecycle-hooks))`,
  } satisfies PodSetting<readonly ExecHandlerKind[]>,
};

export type PodSettingKey = keyof typeof PodSettings;

/** `raw` read as the pod setting `key`; an absent or empty annotation means its fallback. */
export function readPodSetting<K extends PodSettingKey>(
  key: K,
  raw: string | undefined,
): { ok: true; value: (typeof PodSettings)[K]["fallback"] } | { ok: false } {
  const spec = PodSettings[key];
  if (raw === undefined || raw === "") return { ok: true, value: spec.fallback };
  const value = spec.parse(raw);
  return value === undefined ? { ok: false } : { ok: true, value };
}
