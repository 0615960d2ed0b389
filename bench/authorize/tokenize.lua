-- POST /v1/tokens with a distinct card per request. Env: CP_KEY, CP_BENCH_DIR.
dofile(os.getenv("CP_BENCH_DIR") .. "/cards.lua")
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  math.randomseed(os.time() + tid * 104729)
  auth = "Bearer " .. os.getenv("CP_KEY")
end

function request()
  counter = counter + 1
  local body = '{"card":{"number":"' .. distinct_card(tid, counter) ..
    '","exp_month":12,"exp_year":2030}}'
  return wrk.format("POST", "/v1/tokens", {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
  }, body)
end
