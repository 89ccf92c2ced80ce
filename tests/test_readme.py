import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_has_exactly_the_two_setup_commands():
    setup = README.read_text().split("## A tour")[0]
    assert re.findall(r"^make \w+", setup, re.M) == ["make demo", "make test"]


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_command_lines_name_real_commands():
    from neurotoken.cli import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    used = re.findall(r"^neurotoken (\w+)", README.read_text(), re.M)
    assert used and set(used) <= commands
