-- POST /v1/payments with an inline test card and a unique Idempotency-Key per request.
-- Env: CP_KEY (merchant secret key), CP_CAPTURE ("true" for a sale).
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("wrk-%d-%d-%d", os.time(), tid, math.random(1, 1000000000))
  local capture = os.getenv("CP_CAPTURE") or "false"
  body = '{"amount":2599,"currency":"usd","capture":' .. capture ..
    ',"source":{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}}'
  auth = "Bearer " .. os.getenv("CP_KEY")
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/v1/payments", {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, body)
end
