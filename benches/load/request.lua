-- wrk: POST the signed body; a fresh Idempotency-Key per request unless
-- BENCH_KEY is set (then every request is a duplicate of the first).
local body_file = os.getenv("BENCH_BODY")
local sig = os.getenv("BENCH_SIG")
local fixed = os.getenv("BENCH_KEY")
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()
local prefix = tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9)) .. "-"
local n = 0
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Webhook-Signature"] = sig
request = function()
  n = n + 1
  wrk.headers["Idempotency-Key"] = fixed or (prefix .. n)
  return wrk.format(nil, "/webhooks/fynapse")
end
