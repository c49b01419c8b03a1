"""GX's INFO lines stay out of crm2erp's log unless it is asked for INFO (``-v``);
the CLI side is checked on the demo's stderr in tests/cli/test_cli.py."""

from __future__ import annotations

import logging

import pytest


class Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def root_handler():
    from crm2erp.quality.gx.suite import GX_LOGGERS  # imports GX: not at collection

    root = logging.getLogger()
    saved = root.level, {n: logging.getLogger(n).level for n in GX_LOGGERS}
    handler = Kept()
    root.addHandler(handler)
    yield root, handler
    root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("root_level, shown", [(logging.WARNING, False), (logging.INFO, True)])
def test_gx_info_lines_show_only_when_the_application_logs_info(root_handler, root_level,
                                                                 shown):
    root, handler = root_handler
    gx_base = logging.getLogger("great_expectations.data_context.types.base")
    gx_base.setLevel(logging.INFO)   # what GX does to itself on import
    root.setLevel(root_level)        # crm2erp: WARNING, or INFO with -v
    from crm2erp.quality.gx.suite import quiet_gx_logging

    quiet_gx_logging()
    gx_base.info("Created temporary directory '/tmp/x' for ephemeral docs site")
    gx_base.warning("a GX warning")
    expected = ["a GX warning"]
    if shown:
        expected.insert(0, "Created temporary directory '/tmp/x' for ephemeral docs site")
    assert handler.messages == expected
