import subprocess
import sys


def test_import_does_not_pull_cli_plotting_or_optional_packages():
    code = ("import sys, neurotoken; bad = [m for m in ('neurotoken.cli', 'typer', 'rich', 'matplotlib', "
            "'sklearn', 'snntorch', 'norse', 'spikingjelly', 'triton', 'numba', 'nir', 'nirtorch', 'tomli_w') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_console_script_lists_experiments():
    out = subprocess.run([sys.executable, "-m", "neurotoken", "list"], capture_output=True, text=True, check=True)
    assert "digits" in out.stdout


def test_debug_mode_is_public_and_off_by_default():
    import neurotoken as nt
    from neurotoken import _debug

    assert "debug" in nt.__all__ and callable(nt.debug) and not _debug.enabled()
