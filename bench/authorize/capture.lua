-- POST /v1/payments/{id}/capture over a list of authorized payment ids (one per line in the file
-- named by CP_IDS), each thread taking every Nth id so no payment is captured twice.
-- Env: CP_KEY, CP_IDS, CP_THREADS.
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  ids = {}
  local n = tonumber(os.getenv("CP_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("CP_IDS")) do
    if i % n == tid then table.insert(ids, line) end
    i = i + 1
  end
  pos = 0
  auth = "Bearer " .. os.getenv("CP_KEY")
end

function request()
  pos = pos + 1
  local id = ids[((pos - 1) % #ids) + 1]
  return wrk.format("POST", "/v1/payments/" .. id .. "/capture", {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "cap-" .. id,
  }, "{}")
end
