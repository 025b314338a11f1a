// The user-facing contract shared by the webhook and the shim (DESIGN.md §2, §3, §5): annotation
// and label keys, the injected env vars, the shim's location and its exit codes. No other file
// spells these strings.

export const ANNOTATION_PREFIX = "kustodia.io/";

/** Pod annotations read (and one written) by the webhook. */
export const Annotations = {
  /** `"true"` opts the pod in. Nothing else mutates a pod. */
  inject: "kustodia.io/inject",
  /** Comma-separated container / initContainer names to inject (default: those with a `SECRET_` var). */
  containers: "kustodia.io/containers",
  /** `vault` | `custodia`: backend for references without a scheme. */
  backend: "kustodia.io/backend",
  vaultRole: "kustodia.io/vault-role",
  vaultAuthPath: "kustodia.io/vault-auth-path",
  vaultKvMount: "kustodia.io/vault-kv-mount",
  vaultNamespace: "kustodia.io/vault-namespace",
  /** Only honoured when the cluster's address allowlist permits it. */
  vaultAddr: "kustodia.io/vault-addr",
  /** Prefix of `entrypoint.<container>`: the image ENTRYPOINT as a JSON array. */
  entrypointPrefix: "kustodia.io/entrypoint.",
  /** Comma-separated `SECRET_`-prefixed vars that are plain values, not references. */
  passthrough: "kustodia.io/passthrough",
  /** `"true"`: a missing secret leaves the var unset instead of failing the start. */
  ignoreMissing: "kustodia.io/ignore-missing",
  /** `restart` | `signal` | `none`. */
  rotation: "kustodia.io/rotation",
  /** Go-style duration, e.g. `5m`. */
  rotationInterval: "kustodia.io/rotation-interval",
  /** Signal name, e.g. `SIGHUP`. */
  rotationSignal: "kustodia.io/rotation-signal",
  /** `"true"` | `"false"` | comma-separated handler kinds: exec probes and hooks that run through the shim. */
  wrapExec: "kustodia.io/wrap-exec",
  /** `"true"`: wrapped exec handlers write the audit record at every run. */
  wrapExecAudit: "kustodia.io/wrap-exec-audit",
  /** Written by the webhook: `injected` plus the shim version. */
  status: "kustodia.io/status",
} as const;

/** Namespace label that opts a namespace in (the chart's default namespaceSelector). */
export const NAMESPACE_LABEL = "kustodia.io/injection";
export const NAMESPACE_LABEL_VALUE = "enabled";

/** Default prefix of reference vars: `SECRET_<NAME>`. */
export const DEFAULT_REFERENCE_PREFIX = "SECRET_";

/** Every shim setting lives in an env var with this prefix; all are stripped before exec. */
export const SHIM_ENV_PREFIX = "KUSTODIA_";

/** The shim's env vars; common/shim-settings.ts says what each accepts. */
export const ShimEnv = {
  backend: "KUSTODIA_BACKEND",
  vaultAddr: "KUSTODIA_VAULT_ADDR",
  vaultCaCert: "KUSTODIA_VAULT_CACERT",
  vaultAuthMethod: "KUSTODIA_VAULT_AUTH_METHOD",
  vaultAuthPath: "KUSTODIA_VAULT_AUTH_PATH",
  vaultRole: "KUSTODIA_VAULT_ROLE",
  vaultKvMount: "KUSTODIA_VAULT_KV_MOUNT",
  vaultNamespace: "KUSTODIA_VAULT_NAMESPACE",
  vaultTokenFile: "KUSTODIA_VAULT_TOKEN_FILE",
  /** AppRole credentials, read from files (like Vault Agent's role_id_file_path), never from env. */
  vaultRoleIdFile: "KUSTODIA_VAULT_ROLE_ID_FILE",
  vaultSecretIdFile: "KUSTODIA_VAULT_SECRET_ID_FILE",
  saTokenFile: "KUSTODIA_SA_TOKEN_FILE",
  custodiaUrl: "KUSTODIA_CUSTODIA_URL",
  /** TLS for an `https://` Custodia: CA bundle, and the client certificate + key it authenticates with. */
  custodiaCaCert: "KUSTODIA_CUSTODIA_CACERT",
  custodiaClientCert: "KUSTODIA_CUSTODIA_CLIENT_CERT",
  custodiaClientKey: "KUSTODIA_CUSTODIA_CLIENT_KEY",
  prefix: "KUSTODIA_PREFIX",
  passthrough: "KUSTODIA_PASSTHROUGH",
  ignoreMissing: "KUSTODIA_IGNORE_MISSING",
  timeout: "KUSTODIA_TIMEOUT",
  rotation: "KUSTODIA_ROTATION",
  rotationInterval: "KUSTODIA_ROTATION_INTERVAL",
  rotationSignal: "KUSTODIA_ROTATION_SIGNAL",
  /** How long before an issued secret expires the shim renews or re-issues it: `10m` or `33%` of its lifetime. */
  rotationMargin: "KUSTODIA_ROTATION_MARGIN",
  logLevel: "KUSTODIA_LOG_LEVEL",
  /** `app` | `probe` | `hook`: what the shim starts; the webhook writes `probe`/`hook` into wrapped exec handlers' command. */
  role: "KUSTODIA_ROLE",
  /** `true`: wrapped exec handlers write the audit record at every run. */
  handlerAudit: "KUSTODIA_HANDLER_AUDIT",
  /** The pod's identity (downward API, added by the webhook to containers with issued references). */
  podName: "KUSTODIA_POD_NAME",
  podNamespace: "KUSTODIA_POD_NAMESPACE",
  podServiceAccount: "KUSTODIA_POD_SERVICE_ACCOUNT",
} as const;

/** Where the webhook's downward-API env vars take the pod's identity from (fieldRef.fieldPath). */
export const POD_IDENTITY_FIELDS = {
  [ShimEnv.podName]: "metadata.name",
  [ShimEnv.podNamespace]: "metadata.namespace",
  [ShimEnv.podServiceAccount]: "spec.serviceAccountName",
} as const;

/** The shared volume, its mount point, and the shim inside it. */
export const VOLUME_NAME = "kustodia";
export const MOUNT_PATH = "/kustodia";
export const SHIM_PATH = "/kustodia/kustodia-shim";
/** Static tini in the runtime: PID 1 in front of the shim in rotation mode, where the shim stays resident (zombie reaping). */
export const TINI_PATH = "/kustodia/tini";
export const INSTALL_CONTAINER_NAME = "kustodia-install";
/** Where the shim image keeps its runtime (a `/kustodia` → `/` symlink makes both paths work). */
export const SHIM_IN_IMAGE = "/kustodia/kustodia-shim";
/** Where the install init container mounts the shared volume it fills. */
export const INSTALL_MOUNT_PATH = "/mnt/kustodia";

/** Where the kubelet mounts a pod's ServiceAccount token when automounting is on. */
export const SERVICE_ACCOUNT_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Where the webhook mounts a projected token for the shim when the pod has no automounted one. */
export const SHIM_TOKEN_DIR = "/var/run/secrets/kustodia.io/serviceaccount";

/** Shim exit codes (sysexits.h). */
export const ExitCode = {
  /** EX_CONFIG: a reference could not be resolved (missing, denied, malformed). */
  config: 78,
  /** EX_UNAVAILABLE: the backend stayed unreachable past KUSTODIA_TIMEOUT. */
  unavailable: 69,
} as const;
