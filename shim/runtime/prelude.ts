// The first statement of the runtime's shim (build-runtime puts this bundle in front of
// dist/shim/main.js): undo the launcher's renaming before any shim code runs.
import { restoreStashedEnv } from "./env-stash.ts";

restoreStashedEnv(process.env);
