import { forBackend } from "../support/backends.js";
import { hostileKeysSuite } from "../support/hostile.js";

// The embedded store lives in the suite's own data directory.
forBackend("embedded", () => hostileKeysSuite({ name: "embedded", env: { IDMAP_KV_BACKEND: "embedded" } }));
