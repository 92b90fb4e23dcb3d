-- wrk script: POSTs a one-byte body per request, each with a new
-- X-Progress-ID (a counter as 32 hex digits, from args[2] + 1 on),
-- pipelined args[3] (default 1) at a time; stops sending after args[1]
-- answers.  Run it with one wrk thread (-t1): the counter is the only
-- source of ids.
local total, next_id, answers, depth = 0, 0, 0, 1

function init(args)
  total = tonumber(args[1])
  next_id = tonumber(args[2] or "0")
  depth = tonumber(args[3] or "1")
end

function request()
  local batch = {}
  for i = 1, depth do
    next_id = next_id + 1
    batch[i] = wrk.format("POST", nil,
      { ["X-Progress-ID"] = string.format("%032x", next_id) }, "x")
  end
  return table.concat(batch)
end

function response(status, headers, body)
  answers = answers + 1
  if answers >= total then wrk.thread:stop() end
end
