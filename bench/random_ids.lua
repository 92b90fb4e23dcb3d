-- wrk script: asks the progress URL for ids nobody uses, 32 random hex
-- digits each, pipelined args[2] (default 1) at a time; with args[3] =
-- "stream" each request asks for an event stream (Accept:
-- text/event-stream) instead of a poll.  After args[1] answers (one wrk
-- thread: -t1) it stops sending and creates the file args[4], so that its
-- caller can end wrk's timed run (SIGINT).  What a client costs the table
-- with lookups of unknown ids (tests/integration/test_memory.py, bench/run).
local total, depth, answers, headers, done_file = 0, 1, 0, {}, nil

function init(args)
  total = tonumber(args[1])
  depth = tonumber(args[2] or "1")
  if args[3] == "stream" then headers["Accept"] = "text/event-stream" end
  done_file = args[4]
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

local function random_id()
  local parts = {}
  for i = 1, 8 do parts[i] = string.format("%04x", math.random(0, 65535)) end
  return table.concat(parts)
end

function request()
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format("GET", wrk.path .. "?X-Progress-ID=" .. random_id(), headers)
  end
  return table.concat(batch)
end

function response(status, headers, body)
  answers = answers + 1
  if answers == total then
    wrk.thread:stop()
    if done_file then io.open(done_file, "w"):close() end
  end
end
