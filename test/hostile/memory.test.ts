import { forBackend } from "../support/backends.js";
import { hostileKeysSuite } from "../support/hostile.js";

forBackend("memory", () => hostileKeysSuite({ name: "memory", env: { IDMAP_KV_BACKEND: "memory" } }));
