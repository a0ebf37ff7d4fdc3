-- Distinct, realistic signups for wrk: mostly honest people on free mail and home networks,
-- some business domains, a few disposable and typo addresses. KEY comes from the environment.
-- bench/loads.py sends the same shape from Python: change both together.
local first = {"james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david", "sofia",
               "lukas", "emma", "noah", "olivia", "mateo", "yuki", "chen", "amara", "ivan", "fatima"}
local last = {"smith", "johnson", "williams", "brown", "garcia", "miller", "davis", "martinez", "lopez", "wilson",
              "mueller", "rossi", "kowalski", "tanaka", "nguyen", "okafor", "petrov", "haddad", "silva", "kim"}
local domains = {"gmail.com", "gmail.com", "gmail.com", "outlook.com", "yahoo.com", "icloud.com", "hotmail.com",
                 "proton.me", "gmx.de", "example-mail.com", "acme-corp.io", "mailinator.com", "gmial.com"}
local countries = {"US", "GB", "DE", "FR", "BR", "IN", "JP", "NG"}
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
  local email = string.format("%s.%s%d@%s", pick(first), pick(last), thread_id * 10000000 + counter, pick(domains))
  local ip = string.format("%d.%d.%d.%d", math.random(11, 220), math.random(0, 255), math.random(0, 255), math.random(1, 254))
  local phone = string.format("+1415%07d", math.random(0, 9999999))
  local body = string.format(
    '{"email": "%s", "ip": "%s", "phone": "%s", "country": "%s", "device_id": "dev-%d-%d", "user_agent": "Mozilla/5.0 (bench)"}',
    email, ip, phone, pick(countries), thread_id, counter)
  return wrk.format(nil, "/v1/assessments", nil, body)
end
