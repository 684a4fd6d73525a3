"""How many examples the parser and claim property tests draw: a bounded number in `make test`, more on request.

`make test` must stay fast, so each property runs a few hundred examples. For a long exploration set
AUTHGATE_PROPERTY_SCALE (a multiplier), e.g.:

    AUTHGATE_PROPERTY_SCALE=100 .venv/bin/python -m pytest tests/security/test_compact_decoding_properties.py \
        tests/security/test_claim_rule_properties.py -p no:cacheprovider --timeout=0
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("AUTHGATE_PROPERTY_SCALE", "1")))


def property_settings(examples: int) -> settings:
    """Settings for one property: `examples` times the scale, no per-example deadline (key operations and a busy
    machine make timings noisy; the example count is the bound)."""
    return settings(max_examples=examples * SCALE, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
