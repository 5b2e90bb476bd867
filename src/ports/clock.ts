/** Time comes in through a port so tests can move it; the domain takes it as an argument. */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };
