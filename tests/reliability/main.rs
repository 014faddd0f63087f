//! The reliability suite's fault tests: the release-like binary under a 16-worker load while
//! its dependencies fail (Postgres restarted, Postgres stopped for 10 s, storage stopped for
//! 10 s) and while it is told to stop (SIGTERM with requests in flight, kept-alive
//! connections and a slow client).
//!
//! What each test asserts: during the fault, every answer is the route's success or a 503
//! problem+json; service is back within 2 s of the dependency; at shutdown no accepted request
//! fails and the process exits within its timeouts; afterwards every asset the database holds
//! as complete — every one the load was told was complete among them — has its object in
//! storage, of the declared size and byte-for-byte what was uploaded.
//!
//! Each test starts its own Postgres and S3 stand-in in containers (it stops and starts them),
//! so the tests take turns (`support::one_at_a_time`). See `README.md` beside this file.

mod faults;
mod shutdown;
mod support;
