"""The alarm catalogue (stacks/alarms.py) and the README's "Operating authgate" section say the same thing: every
alarm and every watched 401 code is documented there, with the default thresholds the stacks deploy."""
from __future__ import annotations

from pathlib import Path

import pytest

from stacks.alarms import ALARMS, DEFAULT_WATCHED_401_CODES, UNAUTHORIZED_ACTIONS, AlarmThresholds, describe

README = Path(__file__).resolve().parents[2] / "README.md"


def operating_section() -> str:
    text = README.read_text()
    return text.split("## Operating authgate", 1)[1].split("\n## ", 1)[0]


def test_every_alarm_and_watched_code_is_in_the_readme():
    section = operating_section()
    for alarm in ALARMS.values():
        assert f"| {alarm.name.replace('<code>', '&lt;code&gt;')} " in section, alarm.name
    for code in DEFAULT_WATCHED_401_CODES:
        assert f"`{code}`" in section, code
        assert code in UNAUTHORIZED_ACTIONS, code


def test_the_readme_quotes_the_default_thresholds():
    t = AlarmThresholds()
    section = operating_section()
    for phrase in (f"each of {t.key_fetch_failure_minutes} consecutive minutes",
                   f"over {t.unauthorized_share_percent:g}% of decisions (and at least {t.unauthorized_min_count}",
                   f"over {t.latency_p99_ms:g} ms for {t.latency_periods * 5} minutes",
                   f"{t.gateway_5xx_count} API Gateway 5xx in 5 minutes"):
        assert phrase in section, phrase


@pytest.mark.parametrize("key", sorted(ALARMS))
def test_descriptions_fit_every_cloud(key):
    # CloudWatch caps an alarm description at 1024 characters; Cloud Monitoring and Azure allow more.
    if key != "unauthorized":
        assert len(describe(key, "a-long-api-name-of-thirty-char", AlarmThresholds())) <= 1024
