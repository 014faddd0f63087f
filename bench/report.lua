-- Shared by the wrk scripts: one machine-readable line at the end of a run, counting as
-- errors every socket error, timeout and non-2xx answer.
--   RESULT <requests> <seconds> <p50 ms> <p99 ms> <errors>

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   io.write(string.format("RESULT %d %.3f %.3f %.3f %d\n",
      summary.requests, summary.duration / 1e6,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
