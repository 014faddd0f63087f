-- wrk script: POST /api/upload with a fresh object_key on every request.
-- Keys are bench/<run>/<thread>/<n>; <run> comes from the command line (after `--`), so
-- every measurement creates new assets instead of re-issuing old ones.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("thread_id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   run = args[1] or "run"
   counter = 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["X-Api-Key"] = os.getenv("BENCH_API_KEY")
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"object_key":"bench/%s/%d/%d","content_type":"application/octet-stream","content_length":1024}',
      run, thread_id, counter)
   return wrk.format("POST", "/api/upload", nil, body)
end

dofile(os.getenv("BENCH_DIR") .. "/report.lua")
