-- GET /v1/payments/{id} over a list of payment ids (CP_IDS, one per line). Env: CP_KEY.
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  ids = {}
  for line in io.lines(os.getenv("CP_IDS")) do table.insert(ids, line) end
  pos = tid * 7919
  auth = "Bearer " .. os.getenv("CP_KEY")
end

function request()
  pos = pos + 1
  return wrk.format("GET", "/v1/payments/" .. ids[(pos % #ids) + 1], {["Authorization"] = auth})
end
