-- What a signup farm sends, for wrk: every phone in one number block (+14155550xxx, so the
-- phone_block key is hot on every request), addresses from four /24 networks of one
-- provider's range, patterned mailboxes (user<serial>@ a few throwaway and look-alike
-- domains), device ids mostly distinct with a few emulators reused. KEY comes from the
-- environment. bench/loads.py sends the same shape from Python: change both together.
local domains = {"mailinator.com", "yopmail.com", "example-mail.com", "gmial.com"}
local networks = {"45.61.160", "45.61.161", "45.61.162", "45.61.163"}
local emulators = {"emu-1", "emu-2", "emu-3"}
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  math.randomseed(os.time() + thread_id * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
end

local function pick(list) return list[math.random(#list)] end

function request()
  counter = counter + 1
  local email = string.format("user%d@%s", thread_id * 10000000 + counter, pick(domains))
  local ip = string.format("%s.%d", pick(networks), math.random(1, 254))
  local phone = string.format("+14155550%03d", math.random(0, 999))
  local device = string.format("farm-%d-%d", thread_id, counter)
  if math.random(10) == 1 then device = pick(emulators) end  -- one in ten from a reused emulator
  local body = string.format(
    '{"email": "%s", "ip": "%s", "phone": "%s", "country": "US", "device_id": "%s", "user_agent": "Mozilla/5.0 (Linux; Android 10; farm)"}',
    email, ip, phone, device)
  return wrk.format(nil, "/v1/assessments", nil, body)
end
