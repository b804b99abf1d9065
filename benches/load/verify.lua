-- nginx + Lua: the do-it-yourself alternative to hookgate. HMAC-SHA256 over
-- "<t>.<body>" through OpenSSL (LuaJIT FFI, C speed), constant-time compare,
-- freshness, and dedupe on Idempotency-Key in a shared dict; settled in
-- log_by_lua from the upstream's status.
-- This file runs for every request; the FFI declarations and buffers are
-- made once and kept in package.loaded (cdef'ing again each time overflows
-- LuaJIT's tables).
local H = package.loaded.hookgate_bench_hmac
if not H then
  local ffi = require "ffi"
  ffi.cdef[[
  typedef struct evp_md_st EVP_MD;
  const EVP_MD *EVP_sha256(void);
  unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                      const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
  ]]
  local ok, C = pcall(function() return ffi.C.EVP_sha256 and ffi.C end)
  if not ok then C = ffi.load("libcrypto.so.3") end
  local secret = os.getenv("BENCH_SECRET") or "bench-secret"
  local md = ffi.new("unsigned char[32]")
  local mdlen = ffi.new("unsigned int[1]")
  local sha256 = C.EVP_sha256()
  H = {
    mac = function(msg)
      C.HMAC(sha256, secret, #secret, msg, #msg, md, mdlen)
      return ffi.string(md, 32)
    end,
  }
  package.loaded.hookgate_bench_hmac = H
end
local bit = require "bit"
local hmac_bin = H.mac

local function hex_to_bin(h)
  return (h:gsub("%x%x", function(c) return string.char(tonumber(c, 16)) end))
end

local function ct_equal(a, b)
  if #a ~= #b then return false end
  local acc = 0
  for i = 1, #a do acc = bit.bor(acc, bit.bxor(a:byte(i), b:byte(i))) end
  return acc == 0
end

local function reject(status, reason)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say('{"error":"' .. reason .. '"}')
  return ngx.exit(status)
end

local sig = ngx.var.http_webhook_signature
if not sig then return reject(401, "missing_signature") end
local t = sig:match("t=(%d+)")
local v1 = sig:match("v1=(%x+)")
if not t or not v1 then return reject(401, "malformed_signature") end
ngx.req.read_body()
local body = ngx.req.get_body_data() or ""
if #v1 ~= 64 or not ct_equal(hmac_bin(t .. "." .. body), hex_to_bin(v1)) then
  return reject(401, "signature_mismatch")
end
if math.abs(ngx.time() - tonumber(t)) > 300 then return reject(401, "stale_timestamp") end
local key = ngx.var.http_idempotency_key
if not key then return reject(400, "missing_idempotency_key") end
local dict = ngx.shared.dedupe
local added = dict:add(key, "f", 60)
if not added then
  if dict:get(key) == "d" then
    ngx.header["Hookgate-Duplicate"] = "true"
    ngx.status = 200
    ngx.say('{"status":"duplicate"}')
    return ngx.exit(200)
  end
  ngx.header["Retry-After"] = "5"
  return reject(409, "in_flight")
end
ngx.ctx.dedupe_key = key
