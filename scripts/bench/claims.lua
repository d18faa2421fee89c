-- wrk script: POST a claim per request, each with its own shopper and Idempotency-Key,
-- and count the answers by status. Set DROP and KEY (a storefront API key) in the environment.
local drop = os.getenv("DROP")
local key = os.getenv("KEY")
-- Globals, not locals: wrk reads and sets a thread's globals (thread:get/set).
counter = 0
thread_id = 0
statuses = {}
threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("thread_id", thread_id)
  table.insert(threads, thread)
end

function init(args)
  -- Every thread's Lua starts with the same random seed: the thread id keeps keys apart.
  math.randomseed(os.time() * 100 + thread_id)
  prefix = string.format("w%d-%d-", thread_id, math.random(1, 1000000000))
  statuses = {}
end

function request()
  counter = counter + 1
  local id = prefix .. counter
  return wrk.format("POST", "/v1/drops/" .. drop .. "/claims", {
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = id,
    ["Content-Type"] = "application/json",
  }, '{"user":"' .. id .. '"}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do total[status] = (total[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(total) do table.insert(parts, status .. "=" .. n) end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end
