"""README's two commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())
    assert len(commands) >= 2
    main_job, tests = commands[0], commands[1]
    assert "python -m parity" in main_job and "torch==2.13.0" in main_job
    assert re.search(r"python -m pytest( -n \d+)?$", tests) and "torch==2.13.0" in tests
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
