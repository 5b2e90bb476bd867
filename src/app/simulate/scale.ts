/**
 * A rate target ("at least 99 % of X") judged on the number of events the run had. It tolerates the
 * target's share of misses, but never less than one: below 1 / (1 - rate) events (100 for 99 %) a
 * single miss already breaks the rate, so a small fleet could not tell a defect from chance. A target
 * met only thanks to that one-miss floor holds only at scale, and the report says so.
 */
export interface RateJudgement {
  readonly met: boolean;
  /** Set when the run was too small to judge the rate itself. */
  readonly atScaleOnly?: string;
}

export function judgeRate(misses: number, events: number, minPercent: number): RateJudgement {
  const share = events * (1 - minPercent / 100);
  if (misses <= share) return { met: true };
  if (share < 1 && misses <= 1) {
    const needed = Math.ceil(100 / (100 - minPercent));
    return {
      met: true,
      atScaleOnly:
        `holds only at scale: ${misses} miss in ${events} is within chance; ` +
        `judging ${minPercent} % needs >= ${needed}`,
    };
  }
  return { met: false };
}
