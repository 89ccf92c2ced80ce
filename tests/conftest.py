"""Suite-wide fixtures."""

import pytest

import neurotoken as nt


@pytest.fixture(autouse=True)
def _debug_mode_off():
    """Each test starts and ends with debug mode off (an in-process `--debug` CLI run switches it on)."""
    nt.debug(False)
    yield
    nt.debug(False)
