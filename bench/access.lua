-- wrk script: GET /api/access for a random one of the complete assets listed (one id a line)
-- in the file named by BENCH_IDS.

function init(args)
   wrk.headers["X-Api-Key"] = os.getenv("BENCH_API_KEY")
   ids = {}
   for line in io.lines(os.getenv("BENCH_IDS")) do
      table.insert(ids, line)
   end
   math.randomseed(os.time() + (thread_id or 0))
end

function request()
   return wrk.format("GET", "/api/access?asset_id=" .. ids[math.random(#ids)])
end

dofile(os.getenv("BENCH_DIR") .. "/report.lua")
