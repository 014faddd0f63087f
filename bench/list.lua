-- wrk script: GET the path in BENCH_LIST_PATH (a page of GET /api/assets) as the bench owner.

function init(args)
   wrk.headers["X-Api-Key"] = os.getenv("BENCH_API_KEY")
   path = os.getenv("BENCH_LIST_PATH")
end

function request()
   return wrk.format("GET", path)
end

dofile(os.getenv("BENCH_DIR") .. "/report.lua")
