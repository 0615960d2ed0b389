-- POST /ceiling: the minimal endpoint that makes one durable INSERT per request.
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("POST", "/ceiling", {["Content-Type"] = "application/json"},
    '{"n":' .. counter .. '}')
end
