// What the mutation needs to know about images, and what the registry client answers: the
// ENTRYPOINT/CMD of an image for a platform. Shared by the mutation core and webhook/registry/.

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
}

export type ImageLookupResult = { ok: true; config: ImageConfig } | { ok: false; error: string };

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** An image whose ENTRYPOINT/CMD the mutation needs. */
export interface ImageNeed {
  container: string;
  image: string;
  /** Undefined: the pod does not pin an architecture; use the configured default. */
  architecture?: string;
}
