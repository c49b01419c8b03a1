"""The toolkit's retired setting: refused, or dropped with a warning."""

from __future__ import annotations

import logging

import pytest

from crm2erp.connectors.toolkit.config import retired_setting


def test_a_retired_setting_is_refused_or_dropped_with_a_warning(caplog):
    data = {"base_url": "https://x.example", "write_attempts": 3}
    with pytest.raises(ValueError, match="write_attempts is gone"):
        retired_setting(data, "write_attempts", "write_attempts is gone", refuse=True)
    logger = logging.getLogger("crm2erp.connectors.example")
    with caplog.at_level(logging.WARNING, logger="crm2erp.connectors.example"):
        kept = retired_setting(data, "write_attempts", "ignored", refuse=False, logger=logger)
    assert kept == {"base_url": "https://x.example"} and "write_attempts" in data
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("crm2erp.connectors.example", "ignored")]
    # not there, or not a dict: returned as it is, nothing said
    assert retired_setting(kept, "write_attempts", "x", refuse=True) is kept
    assert retired_setting(None, "write_attempts", "x", refuse=True) is None
