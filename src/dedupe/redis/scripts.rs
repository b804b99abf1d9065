//! The Lua scripts: each touches one key, so every call lands on one
//! Cluster slot.

/// Reserve: `{1, 0}` acquired (or already ours), `{2, ms left}` delivered,
/// `{0, 0}` in flight.
/// KEYS[1] = key, ARGV[1] = `f:<token>`, ARGV[2] = in-flight ms.
pub(super) const RESERVE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
local v = redis.call('GET', KEYS[1])
if v == 'd' then
  return {2, redis.call('PTTL', KEYS[1])}
end
if v == ARGV[1] then
  return {1, 0}
end
return {0, 0}
";

/// Settle: `1` marked delivered, `0` not ours (any more).
/// KEYS[1] = key, ARGV[1] = `f:<token>`, ARGV[2] = ttl ms.
pub(super) const SETTLE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
  return 1
end
return 0
";

/// Release: `1` deleted, `0` not ours (any more).
/// KEYS[1] = key, ARGV[1] = `f:<token>`.
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";
