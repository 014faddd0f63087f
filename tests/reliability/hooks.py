"""Schemathesis hooks of the fuzz suite: make generated requests name assets that exist.

Random UUIDs only ever reach the "no such asset" branch of a route. fuzz.sh creates complete
and pending assets of the run's owner before the run and names their ids in FUZZ_ASSET_IDS;
wherever an operation takes an `asset_id` (path, query or JSON body), the generated value is
kept or replaced by one of those ids, chosen by Hypothesis, so the seed still fixes the run.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["FUZZ_ASSET_IDS"], encoding="utf-8") as ids_file:
    _IDS = json.load(ids_file)

# DELETE gets the pending ones only, so the complete assets stay for access to find.
_ANY = st.sampled_from(_IDS["complete"] + _IDS["pending"])
_DELETABLE = st.sampled_from(_IDS["pending"])


def _with_known_id(ctx, value):
    if not isinstance(value, dict) or "asset_id" not in value:
        return st.just(value)
    known = _DELETABLE if ctx.operation.method.upper() == "DELETE" else _ANY
    return st.one_of(st.just(value), known.map(lambda asset_id: {**value, "asset_id": asset_id}))


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    return _with_known_id(ctx, path_parameters)


@schemathesis.hook
def flatmap_query(ctx, query):
    return _with_known_id(ctx, query)


@schemathesis.hook
def flatmap_body(ctx, body):
    return _with_known_id(ctx, body)
