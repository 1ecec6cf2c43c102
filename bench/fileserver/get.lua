-- GET a random one of COUNT files under PATH_PREFIX (the same names on the file server and nginx).
local count = tonumber(os.getenv("COUNT") or "1000")
local prefix = os.getenv("PATH_PREFIX") or "/files/g/"
function init()
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
function request()
  return wrk.format("GET", prefix .. math.random(0, count - 1))
end
