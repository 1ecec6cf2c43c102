-- PUT to a fresh path each request: /files/<prefix>/<thread>/<n>, body of SIZE bytes.
-- DELAY_MS (optional) is a pause per connection between requests, to run below the maximum rate.
local counter = 0
local body = string.rep("x", tonumber(os.getenv("SIZE") or "4096"))
local prefix = os.getenv("PREFIX") or "w"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  return wrk.format("PUT", "/files/" .. prefix .. "/" .. tid .. "/" .. counter, nil, body)
end

local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end
