/*
 * The Redis store's write scripts. Layout under the prefix P: `P:e:<key>` a hash {v: value, r:
 * revision}; `P:rev` the store revision counter; `P:changes` a stream with one entry per change, id
 * `<revision>-0`, fields k (key) and v (value; absent for a delete). Every write is one script: check,
 * bump the counter, log, apply. The stream entry is added before the hash is touched, so a failing
 * XADD leaves the key as it was. Each returns the new revision, or 0 on a revision conflict.
 *
 * KEYS: entry, counter, stream. ARGV: value, ttlMs (0 = none), key, stream max length, expected revision.
 */
const WRITE_HEAD = `
local function log(r, withValue)
  if withValue then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], r .. '-0', 'k', ARGV[3], 'v', ARGV[1])
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], r .. '-0', 'k', ARGV[3])
  end
end
`;

export const CREATE = `${WRITE_HEAD}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local r = redis.call('INCR', KEYS[2])
log(r, true)
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', r)
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return r`;

export const UPDATE = `${WRITE_HEAD}
if redis.call('HGET', KEYS[1], 'r') ~= ARGV[5] then return 0 end
local r = redis.call('INCR', KEYS[2])
log(r, true)
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', r)
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('PERSIST', KEYS[1]) end
return r`;

export const DELETE = `${WRITE_HEAD}
if redis.call('HGET', KEYS[1], 'r') ~= ARGV[5] then return 0 end
local r = redis.call('INCR', KEYS[2])
log(r, false)
redis.call('DEL', KEYS[1])
return r`;

export type Script = (
  entry: string,
  counter: string,
  stream: string,
  value: Buffer | string,
  ttlMs: number,
  key: string,
  maxLen: number,
  expected: string,
) => Promise<number>;
