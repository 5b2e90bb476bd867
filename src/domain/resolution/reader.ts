import type { Binding, BindingView } from "../binding.js";
import { keyId, type IdentityKey } from "../identity-key.js";

/** Thrown to end a phase early; not an Error, so no stack trace is captured on this hot path. */
export const MISSING = Symbol("missing bindings");

/** A view that remembers which keys it was asked for but did not have. */
export class Reader {
  readonly missing = new Map<string, IdentityKey>();
  constructor(private readonly view: BindingView) {}
  get(key: IdentityKey): Binding | null | undefined {
    const b = this.view(key);
    if (b === undefined) this.missing.set(keyId(key), key);
    return b;
  }
  /** Ends the current phase: if anything was missing, decide() returns `needs`. */
  checkpoint(): void {
    if (this.missing.size > 0) throw MISSING;
  }
}

export const deviceKey = (id: string): IdentityKey => ({ kind: "device-id", value: id });
