import { forBackend } from "../support/backends.js";
import { consistencySuite, memoryPair } from "../support/consistency.js";

forBackend("memory", () => {
  consistencySuite("memory", memoryPair);
});
