-- wrk script: polls the progress of ids 1..args[1] (as populate.lua made
-- them), chosen at random, so lookups land all over the table.
local n = 1

function init(args)
  n = tonumber(args[1])
  math.randomseed(os.time())
end

function request()
  return wrk.format("GET", string.format("%s?X-Progress-ID=%032x",
                                         wrk.path, math.random(1, n)))
end
