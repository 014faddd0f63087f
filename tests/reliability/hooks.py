"""Schemathesis hooks of the fuzz suite: make generated requests name assets that exist.

Random UUIDs only ever reach the "no such asset" branch of a route. fuzz.sh creates complete
and pending assets of the run's owner before the run and names their ids in FUZZ_ASSET_IDS;
wherever an operation takes an `asset_id` (path, query or JSON body), the generated value is
kept or replaced by one of those ids, chosen by Hypothesis, so the seed still fixes the run;
the parts route's `part_numbers` likewise get numbers the multipart fixture has. The asset id
of the parts route is in its path, so its body only needs valid part numbers.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["FUZZ_ASSET_IDS"], encoding="utf-8") as ids_file:
    _IDS = json.load(ids_file)

# DELETE gets the pending single-request ones only, so the complete assets stay for access
# and the multipart one for the parts route.
_ANY = st.sampled_from(_IDS["complete"] + _IDS["pending"] + _IDS["multipart"])
_DELETABLE = st.sampled_from(_IDS["pending"])
_MULTIPART = st.sampled_from(_IDS["multipart"])


def _with_known_id(ctx, value):
    if not isinstance(value, dict) or "asset_id" not in value:
        return st.just(value)
    if ctx.operation.path.endswith("/parts"):
        known = _MULTIPART
    elif ctx.operation.method.upper() == "DELETE":
        known = _DELETABLE
    else:
        known = _ANY
    return st.one_of(st.just(value), known.map(lambda asset_id: {**value, "asset_id": asset_id}))


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    return _with_known_id(ctx, path_parameters)


@schemathesis.hook
def flatmap_query(ctx, query):
    return _with_known_id(ctx, query)


# The multipart fixture declares 200 MiB in 16 MiB parts: numbers 1 to 13 exist.
_PART_NUMBERS = st.lists(st.integers(min_value=1, max_value=13), min_size=1, max_size=5)


@schemathesis.hook
def flatmap_body(ctx, body):
    if isinstance(body, dict) and "part_numbers" in body:
        return st.one_of(
            st.just(body), _PART_NUMBERS.map(lambda numbers: {**body, "part_numbers": numbers})
        )
    return _with_known_id(ctx, body)


@schemathesis.hook
def filter_body(ctx, body):
    # Re-issuing a fixture (schemathesis learns its key from responses) without its size
    # would turn the multipart one into a single-request upload, leaving the parts route
    # nothing to sign.
    reissue = (
        ctx.operation.path == "/api/upload"
        and isinstance(body, dict)
        and str(body.get("object_key", "")).startswith("fixtures/")
    )
    return not reissue
