-- POST /v1/payments with an inline card (a distinct number per request) and a unique
-- Idempotency-Key per request. Env: CP_KEY (merchant secret key), CP_CAPTURE ("true": a sale),
-- CP_BENCH_DIR (where cards.lua is).
dofile(os.getenv("CP_BENCH_DIR") .. "/cards.lua")
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("wrk-%d-%d-%d", os.time(), tid, math.random(1, 1000000000))
  capture = os.getenv("CP_CAPTURE") or "false"
  auth = "Bearer " .. os.getenv("CP_KEY")
end

function request()
  counter = counter + 1
  local body = '{"amount":2599,"currency":"usd","capture":' .. capture ..
    ',"source":{"card":{"number":"' .. distinct_card(tid, counter) ..
    '","exp_month":12,"exp_year":2030,"cvc":"123"}}}'
  return wrk.format("POST", "/v1/payments", {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, body)
end
